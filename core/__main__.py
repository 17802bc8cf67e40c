"""``python -m prehydrate``: the command line, for hosts that start servers by interpreter path."""

from prehydrate.cli import main

if __name__ == "__main__":
    main()
