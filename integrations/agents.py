"""prehydrate for LangChain 1.x agents (``create_agent``), as agent middleware.

Usage::

    from langchain.agents import create_agent
    from prehydrate.integrations.agents import PrehydrateMiddleware
    from prehydrate.integrations.langchain import RequestContextTool

    agent = create_agent(model, tools=[RequestContextTool(), ...], middleware=[PrehydrateMiddleware(engine)])
    await agent.ainvoke({"messages": [("user", question)]}, {"configurable": {"thread_id": "t-1"}})

The middleware opens the turn before the first model call, serves the agent's ``request_context``
calls from it and bails out after the agent's last step. See docs/langgraph.md.
"""

from __future__ import annotations

from prehydrate.integrations._guard import require

require("prehydrate.integrations.agents", "langchain", "langgraph", "langchain_core")

from prehydrate.integrations._middleware import PrehydrateMiddleware, PrehydrateState  # noqa: E402

__all__ = ["PrehydrateMiddleware", "PrehydrateState"]
