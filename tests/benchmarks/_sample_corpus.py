"""Hand-written documentation of *Fernhill*, a fictional product-analytics SaaS, for the sample corpus.

Why hand-written: the demo, the tests and the lexical predictors need prose that reads like real
help-centre pages (with the vocabulary gap between how docs name things and how users ask), which
lorem ipsum or templated text cannot give. ``make_sample_data.py`` writes these to
``core/data/sample_sections.jsonl`` in this order; keep ids stable, because traces refer to them.
"""

from __future__ import annotations

SECTIONS: list[tuple[str, str, list[str], str]] = [
    # ------------------------------------------------------------------ billing
    (
        "billing/overview",
        "How billing works",
        ["billing"],
        """# How billing works

Fernhill bills each workspace, not each user. The workspace owner and anyone with the Billing Admin
role can see invoices, change the plan and update the payment method under **Settings > Billing**.

A subscription renews on the same day every month (or every year on annual plans). Each renewal
creates an invoice that is charged automatically to the default payment method. Seat changes and
event overages made during the period are added to the next invoice, so the amount can differ from
month to month.

All prices are in US dollars unless your workspace was created in the EU region, in which case they
are in euros. The billing currency is fixed when the workspace is created and cannot be changed later;
contact support if you need to move to a different currency, which requires a new subscription.""",
    ),
    (
        "billing/plans",
        "Plans and pricing",
        ["billing"],
        """# Plans and pricing

Fernhill has three plans:

- **Starter**: up to 3 seats, 1 million tracked events per month, 90 days of data retention.
- **Growth**: up to 50 seats, 20 million events per month, 2 years of retention, SSO with Google
  and Microsoft, scheduled exports.
- **Enterprise**: unlimited seats, custom event volume, SAML SSO, audit log, self-hosted deployment,
  a 99.9% uptime SLA and a named support engineer.

Annual billing saves 17% compared with monthly billing on Starter and Growth. Enterprise is always
billed annually on a signed order form.

To upgrade, open **Settings > Billing > Change plan** and pick the new plan; the change takes effect
immediately and the difference is prorated. A downgrade takes effect at the end of the current
billing period, so you keep the features you have already paid for. If your usage exceeds the
limits of the lower plan (more seats or more events), the downgrade is blocked until you reduce it.""",
    ),
    (
        "billing/invoices",
        "Invoices and receipts",
        ["billing"],
        """# Invoices and receipts

Every charge produces an invoice, available under **Settings > Billing > Invoices** as a PDF. An
invoice lists the plan, the number of seats, any prorated adjustments and the event overage for the
previous period.

To change the company name, postal address or VAT number printed on invoices, edit the **Billing
details** form. The new details apply to future invoices only; to reissue a past invoice with
corrected details, ask support with the invoice number (it starts with `FH-`).

Invoices are emailed to the billing contact on the day they are issued. You can add up to five
extra recipients, for example your accounts-payable mailbox. If you do not receive them, check that
`billing@fernhill.io` is not filtered as spam.

Enterprise customers paying by bank transfer receive invoices with net-30 terms and the remittance
details at the bottom of the PDF.""",
    ),
    (
        "billing/payment-methods",
        "Updating your payment method",
        ["billing"],
        """# Updating your payment method

Fernhill accepts Visa, Mastercard and American Express cards, SEPA direct debit for euro workspaces,
and bank transfer on Enterprise plans.

To replace the card on file, go to **Settings > Billing > Payment method** and choose **Update
card**. The new card is validated with a temporary authorisation of 1 USD (or 1 EUR) that is
released within a few days. The new card becomes the default and is used for the next renewal and
for any outstanding invoice.

Some banks require 3-D Secure confirmation. If the confirmation window does not appear, disable
pop-up blockers for `fernhill.io` and try again.

We never store full card numbers: payments are processed by our payment provider, and Fernhill only
keeps the last four digits and the expiry date to show you which card is on file.""",
    ),
    (
        "billing/failed-payments",
        "Failed payments and past-due accounts",
        ["billing"],
        """# Failed payments and past-due accounts

When a renewal charge fails, Fernhill retries it automatically after 3, 5 and 7 days. Each failure
sends an email to the billing contact with the reason given by the bank (for example *insufficient
funds* or *card expired*).

During the retry period the workspace keeps working normally. If the invoice is still unpaid 14 days
after the first attempt, the workspace becomes **past due**: dashboards become read-only and event
ingestion continues for another 16 days, after which incoming events are dropped.

To settle a past-due invoice, update the payment method and press **Pay now** next to the invoice.
Access is restored within a minute of a successful payment. Events dropped while ingestion was
paused cannot be recovered, so fix payment issues before the 30-day mark.

If your company's card blocks recurring charges from abroad, ask your bank to allow charges from
*FERNHILL ANALYTICS*.""",
    ),
    (
        "billing/taxes",
        "Sales tax and VAT",
        ["billing"],
        """# Sales tax and VAT

Fernhill charges VAT to customers in the EU and the UK, and sales tax in US states where we are
registered. The tax rate depends on the billing address on the invoice, not on where your users are.

Businesses in the EU can avoid VAT through the reverse-charge mechanism: enter a valid VAT number in
**Billing details** and it is checked against the VIES database. Once it is validated, future
invoices show 0% VAT and the reverse-charge note. Tax already charged on past invoices is not
refunded automatically; request a credit note from support within 90 days of the invoice date.

US customers that are tax-exempt (for example non-profits or universities) can upload an exemption
certificate. Exemption applies from the next invoice after the certificate is approved.""",
    ),
    (
        "billing/seats",
        "Seats and proration",
        ["billing", "accounts"],
        """# Seats and proration

A seat is a member of the workspace who can log in. Viewers who only open shared dashboards through
a public link do not need a seat.

Adding a member adds a seat straight away. You are charged a prorated amount for the rest of the
current period on the next invoice: for example, adding a seat halfway through a monthly period
costs half the monthly seat price. Removing a member frees the seat, but the credit for the unused
time is applied to the next invoice rather than refunded to your card.

Owners can cap the number of seats under **Settings > Billing > Seat limit** so that admins cannot
invite more people than the budget allows. Invitations that would exceed the cap stay pending until
a seat is freed.""",
    ),
    (
        "billing/usage",
        "Event usage and overages",
        ["billing", "api"],
        """# Event usage and overages

Each plan includes a monthly quota of tracked events. Usage is counted when an event is accepted by
the ingestion API, including events later deleted or filtered out by a data rule.

The **Usage** page shows the events counted so far in the current period and a projection for the
end of the period. Fernhill emails the owner when usage reaches 80% and 100% of the quota.

Usage above the quota is billed as an overage at the end of the period, in blocks of 100,000 events.
On Starter, ingestion stops at 150% of the quota to protect you from an unexpected bill; on Growth
and Enterprise it never stops. You can set a hard cap on Growth to stop ingestion at a chosen limit.

Most unexpected overages come from a tracking loop (a page that sends the same event on every
render) or from a test environment that uses the production API key. The Usage page breaks usage
down by event name and by API key to help you find the source.""",
    ),
    # ------------------------------------------------------------------ refunds
    (
        "billing/refunds",
        "Refund policy",
        ["billing", "refunds"],
        """# Refund policy

You can cancel a subscription at any time. Monthly plans are not refunded for the current month:
the workspace stays on the paid plan until the end of the period and is then moved to the free
tier.

Annual plans can be refunded in full within 14 days of the first payment. After 14 days, an annual
plan can be cancelled with a prorated refund for the full months remaining, minus a 10% early
termination fee.

We also refund charges that were made in error, such as a renewal for a workspace you asked us to
cancel, a duplicate charge, or an overage caused by an incident on our side. Seat credits and
overage adjustments are issued as account credit unless you ask for a refund to the card.

Refunds are always returned to the original payment method. See *Requesting a refund* for how to
ask for one and how long it takes.""",
    ),
    (
        "refunds/request",
        "Requesting a refund",
        ["refunds", "billing"],
        """# Requesting a refund

Only the workspace owner or a Billing Admin can request a refund. Open **Settings > Billing >
Invoices**, select the invoice and choose **Request refund**. Give a short reason and, for a partial
refund, the amount.

Requests that fall within the refund policy (for example an annual plan cancelled within 14 days)
are approved automatically. Other requests are reviewed by the billing team within two business
days, and you receive an email with the decision.

After approval, card refunds take 5 to 10 business days to appear on your statement, depending on
your bank. SEPA refunds take up to 5 business days. The invoice is marked *Refunded* or *Partially
refunded* and a credit note is attached to it.

If you cannot log in to request a refund (for example because the owner left the company), contact
support from an address on the workspace's verified company domain.""",
    ),
    (
        "refunds/partial",
        "Partial refunds and prorated credits",
        ["refunds", "billing"],
        """# Partial refunds and prorated credits

A partial refund returns part of an invoice, for example when you were charged for seats that were
removed on the first day of the period, or for an overage that came from a tracking bug we agreed
to waive.

Partial refunds are computed per line item: the billing team refunds the affected lines and leaves
the rest of the invoice paid. Prorated credits for downgrades and removed seats are different: they
are not refunds but a balance on your account, applied automatically to the next invoices until it
is used up. The balance is shown at the top of the **Invoices** page.

Account credit does not expire while the subscription is active. If you close the workspace with a
credit balance of more than 50 USD, ask support to refund it to the card before deleting the
workspace; credit cannot be recovered after deletion.""",
    ),
    (
        "refunds/chargebacks",
        "Disputes and chargebacks",
        ["refunds", "billing"],
        """# Disputes and chargebacks

If you do not recognise a charge from *FERNHILL ANALYTICS*, please contact us before disputing it
with your bank. Most unrecognised charges are a renewal of a workspace created by a colleague, and we
can refund charges made in error much faster than a dispute takes.

When a chargeback is opened, the workspace is suspended until the dispute is resolved, because the
payment provider treats the subscription as unpaid. Dashboards become unavailable and ingestion stops
after 7 days.

If the dispute was opened by mistake, ask your bank to withdraw it and send us the confirmation;
we restore the workspace as soon as we receive it. Disputes that are decided in your favour close the
subscription, and the workspace data is kept for 30 days so that you can export it.""",
    ),
    (
        "refunds/cancel-subscription",
        "Cancelling a subscription",
        ["refunds", "billing"],
        """# Cancelling a subscription

To cancel, the owner opens **Settings > Billing** and chooses **Cancel subscription**. You can give a
reason, which helps us improve, and choose whether to cancel at the end of the period (the default)
or immediately.

Cancelling at the end of the period keeps all paid features until the renewal date; no further
charges are made. Cancelling immediately moves the workspace to the free tier straight away; for
annual plans the refund rules of the refund policy apply.

Cancelling does not delete data. On the free tier the workspace keeps the last 30 days of events and
up to three dashboards; older data is deleted 60 days after cancellation. To keep everything, export
your data first or delete the workspace explicitly, which removes it within 30 days.

You can reactivate a cancelled subscription at any time before the renewal date with one click.""",
    ),
    # ------------------------------------------------------------------ accounts
    (
        "accounts/signup",
        "Creating an account and a workspace",
        ["accounts"],
        """# Creating an account and a workspace

Sign up at `app.fernhill.io/signup` with a work email address or with Google or Microsoft. A new
account creates a workspace on a 14-day Growth trial, no card required.

Choose the data region (US or EU) when you create the workspace. The region decides where events are
stored and processed and cannot be changed later.

Email sign-ups must confirm the address with the link we send; the link is valid for 24 hours. If
someone at your company already created a workspace on your email domain, the sign-up page offers to
request an invitation to it instead of creating a second workspace.

One account can belong to several workspaces; switch between them with the workspace menu at the top
left.""",
    ),
    (
        "accounts/roles",
        "Roles and permissions",
        ["accounts"],
        """# Roles and permissions

Each member of a workspace has one role:

- **Owner**: everything, including deleting the workspace and transferring ownership. One per
  workspace.
- **Admin**: manage members, API keys, data rules and integrations.
- **Billing Admin**: see and pay invoices, change the plan; no access to data settings.
- **Analyst**: create and edit dashboards and reports, run queries, export data.
- **Viewer**: open dashboards shared with them.

Admins change a member's role from **Settings > Members**. Changes apply at the member's next request,
without logging them out.

On Enterprise, custom roles can restrict access to projects or to sensitive properties (for example
hiding `email` and `ip` from Analysts). Audit log entries record every role change with who made it
and when.""",
    ),
    (
        "accounts/invite",
        "Inviting and removing members",
        ["accounts"],
        """# Inviting and removing members

Admins invite members from **Settings > Members > Invite**. Enter one or more email addresses and a
role. Invitations are valid for 7 days; resend an expired one from the same page.

If the workspace enforces SSO, invited users must sign in through the identity provider, and the
invitation only decides their role. With SCIM provisioning enabled, members are created and removed
by your identity provider and manual invitations are disabled.

Removing a member signs them out of all sessions within a minute and frees their seat. Dashboards and
reports they created stay in the workspace and are reassigned to the admin who removed them. Their
personal API keys are revoked; workspace API keys they created keep working.""",
    ),
    (
        "accounts/password-reset",
        "Resetting your password",
        ["accounts"],
        """# Resetting your password

On the login page choose **Forgot password?** and enter your email address. If an account exists, we
send a reset link valid for one hour. For security, the page shows the same message whether or not
the address has an account.

Passwords must be at least 12 characters long and must not appear in known data breaches. After a
reset, all your other sessions are signed out.

If you signed up with Google or Microsoft, or your workspace uses SSO, you have no Fernhill password:
reset it with your identity provider instead. The reset email is not sent for these accounts.

Not receiving the email? Check spam, make sure `no-reply@fernhill.io` is allowed by your mail filter,
and wait five minutes before requesting another link, since only the latest link is valid.""",
    ),
    (
        "accounts/mfa",
        "Two-factor authentication",
        ["accounts", "security"],
        """# Two-factor authentication

Turn on two-factor authentication (2FA) under **Profile > Security**. Fernhill supports authenticator
apps (TOTP) and security keys (WebAuthn/passkeys). SMS codes are not supported.

When you enable 2FA you get ten single-use recovery codes. Store them somewhere safe: they are the
only way to sign in if you lose your phone or key.

Lost your device and your recovery codes? A workspace Admin can reset 2FA for you from **Settings >
Members**, after which you set it up again at the next login. If you are the only Owner, contact
support from your account's email address; we verify your identity before resetting 2FA, which takes
up to two business days.

Admins can require 2FA for every member; members without it are asked to set it up at their next
login.""",
    ),
    (
        "accounts/sso",
        "Single sign-on (SAML and OIDC)",
        ["accounts", "security"],
        """# Single sign-on (SAML and OIDC)

Enterprise workspaces can sign in through Okta, Microsoft Entra ID, Google Workspace or any SAML 2.0
or OIDC identity provider. Growth workspaces can use Google and Microsoft sign-in but not SAML.

To configure SAML, open **Settings > Security > Single sign-on**, copy the ACS URL and entity ID into
your identity provider, then upload the provider's metadata XML. Verify your email domain with a DNS
TXT record before enforcing SSO.

Once SSO is enforced, password login is disabled for all members on the verified domains, except the
Owner, who keeps a password as a break-glass account. Users are created on first login with the
default role; map identity-provider groups to Fernhill roles to assign roles automatically.

Common errors: *Invalid audience* means the entity ID does not match; *Signature validation failed*
means the certificate in the metadata was rotated and must be uploaded again.""",
    ),
    (
        "accounts/transfer-ownership",
        "Transferring workspace ownership",
        ["accounts"],
        """# Transferring workspace ownership

Only the current Owner can transfer ownership. Open **Settings > Members**, choose the member who
should become Owner and select **Make owner**. The new Owner must already be an Admin and must accept
the transfer from the email we send; the current Owner becomes an Admin.

If the Owner has left the company and cannot log in, an Admin can ask support to transfer ownership.
Send the request from an address on the workspace's verified domain and include written approval
from someone with authority at your company (for example your IT or finance lead). We complete
verified transfers within three business days.

Transferring ownership does not change the billing contact or the payment method; update them
separately under **Settings > Billing**.""",
    ),
    (
        "accounts/delete",
        "Deleting your account or workspace",
        ["accounts", "export"],
        """# Deleting your account or workspace

Deleting your **account** removes your login and profile and takes you out of every workspace.
Workspaces you own must be transferred or deleted first.

Deleting a **workspace** (Owner only, **Settings > General > Delete workspace**) cancels the
subscription, revokes all API keys and stops ingestion immediately. The workspace is kept in a
deleted state for 30 days, during which the Owner can restore it from the confirmation email. After
30 days all events, dashboards and settings are permanently erased, including from backups within a
further 35 days.

Deletion cannot be undone after the 30 days, so export anything you want to keep first. Invoices are
kept for seven years because tax law requires it; they contain billing details only, not your event
data.""",
    ),
    # ------------------------------------------------------------------ api
    (
        "api/overview",
        "API overview",
        ["api"],
        """# API overview

The Fernhill REST API lets you send events, manage users and run queries programmatically. The base
URL is `https://api.fernhill.io/v2` for US workspaces and `https://api.eu.fernhill.io/v2` for EU
workspaces. Using the wrong region's URL returns `404 workspace_not_found`.

All requests and responses use JSON over HTTPS; plain HTTP is refused. Timestamps are ISO 8601 in
UTC, and identifiers are opaque strings.

The main resources are:

- `POST /events` and `POST /events/batch` to ingest events;
- `/users` to set user properties and delete users;
- `POST /query` to run saved or ad-hoc queries;
- `/exports` to start and download exports.

Official client libraries exist for Python, JavaScript, Go and Ruby. They handle authentication,
batching, retries and rate limits for you.""",
    ),
    (
        "api/authentication",
        "API keys and authentication",
        ["api", "security"],
        """# API keys and authentication

Authenticate API requests with a bearer token: `Authorization: Bearer fh_live_...`. Create keys under
**Settings > API keys** (Admins only).

There are two kinds of keys:

- **Ingestion keys** (`fh_ingest_...`) can only send events. They are safe to embed in a browser or
  mobile app.
- **Secret keys** (`fh_live_...`) can read data, run queries and delete users. Never put them in
  client-side code.

Each key can be restricted to one project and to a list of IP ranges. A key is shown only once when it
is created; store it in a secrets manager.

To rotate a key, create a new one, deploy it, then revoke the old key. Revocation takes effect within
60 seconds. Requests with a revoked or malformed key return `401 invalid_api_key`; a valid key without
the required scope returns `403 insufficient_scope`.""",
    ),
    (
        "api/rate-limits",
        "Rate limits",
        ["api"],
        """# Rate limits

Rate limits protect the service and are applied per API key:

| Endpoint | Limit |
| --- | --- |
| `POST /events`, `/events/batch` | 1,000 requests per second |
| `POST /query` | 10 requests per second, 3 concurrent |
| other endpoints | 100 requests per minute |

Every response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers.
When you exceed a limit the API returns `429 rate_limited` with a `Retry-After` header in seconds.

Retry with exponential backoff and jitter, starting from the `Retry-After` value. Sending events in
batches of up to 500 with `/events/batch` is the easiest way to stay under the ingestion limit.
Enterprise customers can ask for higher limits.""",
    ),
    (
        "api/pagination",
        "Pagination",
        ["api"],
        """# Pagination

List endpoints return results in pages using cursors. A response contains `data` (the items) and
`next_cursor`; pass `cursor=<next_cursor>` to get the next page. When `next_cursor` is `null`, you
have reached the end.

The page size is set with `limit` (default 100, maximum 1,000). Cursors are valid for 24 hours and are
tied to the query parameters of the first request; changing a filter with an old cursor returns
`400 invalid_cursor`.

Items are returned in a stable order (newest first for `/users` and `/exports`), so you do not miss
or repeat items even when new ones are created while you paginate. Offset-based pagination
(`page=2`) was removed in API v2.""",
    ),
    (
        "api/errors",
        "API errors",
        ["api"],
        """# API errors

Errors use standard HTTP status codes and a JSON body:

```json
{"error": {"code": "invalid_event", "message": "property 'price' must be a number",
           "request_id": "req_8f2..."}}
```

| Status | Meaning |
| --- | --- |
| 400 | The request is malformed or a field is invalid; do not retry unchanged. |
| 401 | Missing or invalid API key. |
| 403 | The key lacks the scope or IP range for this call. |
| 404 | The resource, or the workspace in this region, does not exist. |
| 409 | Conflict, e.g. an export with the same idempotency key is running. |
| 413 | Payload larger than 1 MB. |
| 429 | Rate limited; retry after `Retry-After`. |
| 5xx | Server error; safe to retry with backoff. |

Include the `request_id` when you contact support: it lets us find the request in our logs.""",
    ),
    (
        "api/events",
        "Sending events",
        ["api"],
        """# Sending events

An event has a name, a user or anonymous id, a timestamp and properties:

```json
{"event": "Checkout Completed", "user_id": "u_123", "timestamp": "2026-03-01T10:00:00Z",
 "properties": {"plan": "growth", "amount": 49.0}}
```

Send single events with `POST /events` or up to 500 at a time with `POST /events/batch`. The API
answers `202 Accepted` as soon as events are queued; they appear in dashboards within about a minute.

Add an `insert_id` to each event to make retries safe: events with an `insert_id` seen in the last
7 days are dropped as duplicates. Events with a timestamp more than 5 days in the future are
rejected, and events older than the retention period are accepted but not queryable.

Property names are case-sensitive. Keep them consistent across platforms, since `Plan` and `plan` are
shown as two properties.""",
    ),
    (
        "api/query",
        "Running queries through the API",
        ["api"],
        """# Running queries through the API

`POST /query` runs an insight query and returns the result as JSON. Send either the id of a saved
report (`{"report_id": "rep_..."}`) or an ad-hoc query with events, filters, a breakdown and a date
range.

Queries that take longer than 30 seconds return `202` with a `query_id`; poll `GET /query/{id}` until
its status is `done`. Results are cached for 10 minutes, so repeating the same query is cheap.

Query requests need a secret key with the `query:read` scope and count towards the query rate limit
(10 per second, 3 concurrent). For bulk extraction of raw events use exports instead: the query API
returns aggregates and is limited to 10,000 rows.""",
    ),
    (
        "api/versioning",
        "API versions and deprecations",
        ["api"],
        """# API versions and deprecations

The version is part of the URL (`/v2`). Within a version we only make backward-compatible changes:
new endpoints, new optional fields and new response fields. Your client should ignore fields it does
not know.

Breaking changes ship in a new version. The previous version remains available for at least 12 months
after a new one is released, and deprecated endpoints return a `Sunset` header with the shutdown
date.

API v1 will be shut down on 30 June 2027. The main differences in v2 are cursor pagination instead of
page numbers, ISO 8601 timestamps instead of Unix seconds, and the split between ingestion and secret
keys. Update the official client libraries to version 3 or later to use v2.""",
    ),
    # ------------------------------------------------------------------ webhooks
    (
        "webhooks/overview",
        "Webhooks overview",
        ["webhooks"],
        """# Webhooks overview

Webhooks let Fernhill notify your systems when something happens, instead of you polling the API. A
webhook is an HTTPS endpoint that you own; Fernhill sends it a `POST` request with a JSON body for
each subscribed event.

Typical uses: post to Slack when an alert fires, start a pipeline when an export is ready, or sync a
cohort to your CRM when its membership changes.

Each workspace can have up to 20 webhook endpoints, each subscribed to one or more event types.
Deliveries are signed so that you can verify they come from Fernhill, and failed deliveries are
retried for up to three days.""",
    ),
    (
        "webhooks/setup",
        "Creating a webhook endpoint",
        ["webhooks"],
        """# Creating a webhook endpoint

Open **Settings > Webhooks > Add endpoint**. Enter the URL (HTTPS with a valid certificate is
required; self-signed certificates are rejected) and select the event types to subscribe to.

After saving, Fernhill shows the endpoint's **signing secret** (`whsec_...`). Copy it to your
application's configuration: you need it to verify signatures.

Your endpoint must answer with a 2xx status within 10 seconds. Do the real work asynchronously:
store the payload, return `200`, then process it in a background job. Slow endpoints are treated as
failed and retried, which leads to duplicate processing if your handler is not idempotent.

You can pause an endpoint at any time; events that occur while it is paused are not delivered
later.""",
    ),
    (
        "webhooks/signatures",
        "Verifying webhook signatures",
        ["webhooks", "security"],
        """# Verifying webhook signatures

Every delivery has a `Fernhill-Signature` header of the form `t=1767225600,v1=5257a8...`. To verify
it:

1. Take the timestamp `t` and the raw request body, exactly as received (before JSON parsing).
2. Compute an HMAC-SHA256 of `"{t}.{body}"` with the endpoint's signing secret.
3. Compare it with `v1` using a constant-time comparison.
4. Reject the request if `t` is more than five minutes old, to prevent replays.

The most common cause of failed verification is a framework that parses and re-serialises the JSON
before your code sees it, which changes whitespace. Read the raw body instead.

When you rotate the signing secret, both the old and the new secrets are valid for 24 hours, and the
header contains two `v1` values during that window.""",
    ),
    (
        "webhooks/retries",
        "Delivery retries and ordering",
        ["webhooks"],
        """# Delivery retries and ordering

A delivery fails if your endpoint does not answer with a 2xx status within 10 seconds, or if the
connection cannot be established. Failed deliveries are retried with exponential backoff: after
1 minute, 5 minutes, 30 minutes, 2 hours, and then every 6 hours, for up to 3 days.

If every delivery to an endpoint has failed for 3 days, the endpoint is disabled and the Admins
receive an email. Re-enable it from **Settings > Webhooks** after fixing the problem; you can then
replay the missed events from the delivery log.

Deliveries are not guaranteed to arrive in order, and the same event can be delivered more than once.
Use the `id` field of the payload to deduplicate, and the `created_at` field to order events.""",
    ),
    (
        "webhooks/event-types",
        "Webhook event types",
        ["webhooks"],
        """# Webhook event types

| Event type | Sent when |
| --- | --- |
| `alert.triggered` | a metric alert crosses its threshold |
| `export.completed` | a data export is ready to download |
| `export.failed` | an export could not be completed |
| `cohort.updated` | users enter or leave a synced cohort |
| `member.added` / `member.removed` | workspace membership changes |
| `invoice.paid` / `invoice.payment_failed` | billing events, for finance automations |

Every payload has the same envelope: `id`, `type`, `created_at`, `workspace_id` and a `data` object
whose fields depend on the type. New event types may be added at any time, but an endpoint only
receives the types it subscribed to.""",
    ),
    (
        "webhooks/testing",
        "Testing webhooks and the delivery log",
        ["webhooks"],
        """# Testing webhooks and the delivery log

Each endpoint has a **Send test event** button that delivers a sample payload of any subscribed type.
Test deliveries are signed like real ones, so they also check your signature verification.

The **Delivery log** shows every attempt from the last 30 days with the request, your endpoint's
response status and body (first 2 KB) and the time it took. Filter by status to find failures, and
use **Replay** to send a delivery again.

For local development, expose your machine with a tunnelling tool and register the tunnel URL as a
separate endpoint. Remove it when you are done: an unreachable endpoint keeps failing and is disabled
after three days.""",
    ),
    # ------------------------------------------------------------------ deployment
    (
        "deployment/self-hosted",
        "Self-hosted deployment overview",
        ["deployment"],
        """# Self-hosted deployment overview

Enterprise customers can run Fernhill in their own cloud account. The self-hosted edition has the
same features as the cloud service, except that upgrades are applied by you.

A deployment consists of the web app, the ingestion service, the query engine, a PostgreSQL database
for metadata, a ClickHouse cluster for events and an object store (S3, GCS or Azure Blob) for exports
and backups.

Minimum resources for up to 50 million events per month: 16 vCPUs and 64 GB of memory for
ClickHouse, 4 vCPUs and 8 GB for the application services, and 500 GB of SSD storage. Fernhill
supports installation with Docker Compose for evaluation and with Helm on Kubernetes for production.

The self-hosted edition needs a licence key, which your account manager provides; it is checked
offline and does not require outbound internet access.""",
    ),
    (
        "deployment/docker",
        "Installing with Docker Compose",
        ["deployment"],
        """# Installing with Docker Compose

Docker Compose is the quickest way to evaluate the self-hosted edition on one machine (8 vCPUs and
32 GB of memory recommended). It is not supported for production.

1. Download the release bundle and unpack it.
2. Copy `fernhill.env.example` to `fernhill.env` and set `FERNHILL_LICENSE_KEY`, `FERNHILL_DOMAIN` and
   a random `FERNHILL_SECRET_KEY` of at least 32 characters.
3. Run `docker compose up -d`. The first start takes a few minutes while the database migrations run.
4. Open `https://<your domain>` and create the first Owner account.

If the web app shows *502 Bad Gateway* after startup, the migrations are still running; follow them
with `docker compose logs -f migrate`. Data lives in named volumes; back them up before running
`docker compose down -v`, which deletes them.""",
    ),
    (
        "deployment/kubernetes",
        "Installing on Kubernetes with Helm",
        ["deployment"],
        """# Installing on Kubernetes with Helm

For production, install the `fernhill` Helm chart on Kubernetes 1.28 or later:

```
helm repo add fernhill https://charts.fernhill.io
helm install fernhill fernhill/fernhill -f values.yaml --namespace fernhill --create-namespace
```

In `values.yaml`, set the licence key, the public hostname, the ingress class and TLS settings, and
point `postgresql.url` and `clickhouse.hosts` at your managed databases. Running the bundled
PostgreSQL and ClickHouse charts inside the cluster is supported but makes backups your
responsibility.

The ingestion service scales horizontally; enable the HorizontalPodAutoscaler with
`ingest.autoscaling.enabled=true`. Give ClickHouse nodes dedicated node pools with local SSDs. Check
the installation with `helm test fernhill`, which sends a test event and queries it back.""",
    ),
    (
        "deployment/configuration",
        "Configuration reference",
        ["deployment"],
        """# Configuration reference

Self-hosted Fernhill is configured with environment variables (Docker Compose) or the matching
`values.yaml` keys (Helm). The most important ones:

| Variable | Purpose |
| --- | --- |
| `FERNHILL_DOMAIN` | public hostname used in links and cookies |
| `FERNHILL_SECRET_KEY` | signs sessions; changing it logs everyone out |
| `FERNHILL_DATABASE_URL` | PostgreSQL connection string |
| `FERNHILL_CLICKHOUSE_HOSTS` | comma-separated ClickHouse hosts |
| `FERNHILL_OBJECT_STORE_URL` | bucket for exports and backups, e.g. `s3://bucket/prefix` |
| `FERNHILL_SMTP_URL` | mail server for invitations and password resets |
| `FERNHILL_RETENTION_DAYS` | default event retention (default 730) |

Changes take effect after restarting the services. Secrets can be read from files by appending
`_FILE` to the variable name, which works with Docker and Kubernetes secrets.""",
    ),
    (
        "deployment/upgrades",
        "Upgrading a self-hosted deployment",
        ["deployment"],
        """# Upgrading a self-hosted deployment

Fernhill releases a new self-hosted version every month. Versions are supported for 12 months; you
can skip versions, but not more than six at once.

Before upgrading, read the release notes for breaking changes and take a backup. Then:

- **Helm**: `helm repo update` and `helm upgrade fernhill fernhill/fernhill -f values.yaml`.
- **Docker Compose**: download the new bundle, keep your `fernhill.env`, and run
  `docker compose pull && docker compose up -d`.

Database migrations run automatically in a pre-upgrade job. Most upgrades have no downtime; releases
that need a maintenance window say so in the notes. If a migration fails, the job stops before
changing anything it cannot roll back; fix the cause shown in its logs and run the upgrade again.
Downgrades are not supported: restore the backup instead.""",
    ),
    (
        "deployment/backups",
        "Backups and disaster recovery",
        ["deployment"],
        """# Backups and disaster recovery

The self-hosted edition can back up both databases to your object store. Enable it with
`backup.enabled=true` and a schedule (default: daily at 02:00 UTC). Backups are kept for 14 days by
default.

PostgreSQL holds the workspace metadata (members, dashboards, settings) and is small; ClickHouse holds
the events and can be large, so its backups are incremental.

To restore, scale the application services to zero, run the `fernhill restore --from <backup id>`
job, and scale the services back up. Test a restore in a staging environment at least once a quarter:
an untested backup is not a backup.

Fernhill Cloud customers do not need to manage backups: cloud data is backed up continuously and can
be restored to any point in the last 7 days on request.""",
    ),
    # ------------------------------------------------------------------ export
    (
        "export/csv",
        "Exporting data to CSV",
        ["export"],
        """# Exporting data to CSV

Any chart or table can be downloaded as CSV from its **...** menu. The export contains the data as
shown, with the current filters and date range, up to 100,000 rows.

For raw events, use **Data > Exports > New export**: choose the date range, the events and the
properties to include, and the format (CSV or newline-delimited JSON, gzip-compressed). Large exports
run in the background; you receive an email and an `export.completed` webhook when the file is ready.
Download links are valid for 7 days.

Analysts and Admins can create exports. Properties marked as sensitive are left out unless the
export is created by an Admin who explicitly includes them.""",
    ),
    (
        "export/warehouse",
        "Syncing to a data warehouse",
        ["export"],
        """# Syncing to a data warehouse

Growth and Enterprise workspaces can sync events continuously to Snowflake, BigQuery, Redshift or
Databricks. Open **Data > Destinations > Add destination**, choose the warehouse and give Fernhill a
dedicated user or service account with permission to create tables in one schema.

The first sync copies historical data (up to the retention period) and can take several hours for
large workspaces. After that, new events are loaded every hour. Each event name becomes a table and
each property a column; new properties add columns automatically.

If a sync fails, for example because the warehouse credentials expired, Fernhill retries for 24 hours
and then pauses the destination and emails the Admins. Events are kept and loaded when the
destination is resumed, so no data is lost within the retention period.""",
    ),
    (
        "export/scheduled",
        "Scheduled exports",
        ["export"],
        """# Scheduled exports

A scheduled export delivers the same export repeatedly, for example every Monday at 06:00, to an email
address, an S3 or GCS bucket, or an SFTP server. Create one from **Data > Exports > Schedule**.

Each run covers the period since the previous run, so files do not overlap. Files are named
`<export name>/<start>_<end>.csv.gz`, which makes them easy to load incrementally.

Scheduled exports are available on Growth and Enterprise. A schedule owned by a member who is removed
from the workspace keeps running and is reassigned to the Owner. If a delivery fails three runs in a
row, the schedule is paused and its owner notified.""",
    ),
    (
        "export/gdpr",
        "Personal data requests (GDPR and CCPA)",
        ["export", "security"],
        """# Personal data requests (GDPR and CCPA)

When one of your end users asks to see or delete the data you hold about them, use the user privacy
tools, which cover every project in the workspace.

- **Access request**: `POST /users/{id}/export` (or **Data > Privacy > Export user**) produces a JSON
  file with every event and property for that user within 24 hours.
- **Deletion request**: `DELETE /users/{id}` removes the user's events and profile. Deletion is
  completed within 30 days and is irreversible; events arriving later with the same id create a new
  profile, so stop tracking the user first.

Each request is recorded in the privacy log with its status, which you can show your auditors.
Fernhill acts as a processor under our data processing agreement, which you can sign electronically
under **Settings > Legal**.""",
    ),
    (
        "export/retention",
        "Data retention",
        ["export", "billing"],
        """# Data retention

How long events are kept depends on the plan: 90 days on Starter, 2 years on Growth, and the period
set in your contract on Enterprise (up to 7 years). Events older than the retention period are
deleted daily.

Admins can shorten retention under **Settings > Data > Retention**, for example to meet an internal
policy; shortening it deletes older events at the next daily run and cannot be undone. Extending
retention only affects events that have not yet been deleted.

Downgrading to a plan with shorter retention deletes the older events 30 days after the downgrade,
giving you time to export them. Dashboards and reports are not subject to retention, but charts over
deleted periods show no data.""",
    ),
    # ------------------------------------------------------------------ troubleshooting
    (
        "troubleshooting/missing-events",
        "Events are missing or delayed",
        ["troubleshooting", "api"],
        """# Events are missing or delayed

If events do not show up in dashboards, check these in order:

1. **Region**: an EU workspace must send to `api.eu.fernhill.io`. Events sent to the wrong region
   are rejected with `404`.
2. **Key**: the key must be an ingestion or secret key of the right project. Look for `401` in your
   client logs.
3. **Timestamps**: events with a timestamp in the past are shown on that date, not today. Check the
   date range of the chart.
4. **Data rules**: a filter rule may drop the event. See **Data > Rules**.
5. **Live view**: **Data > Live events** shows events as they arrive, before processing. If the event
   appears there but not in charts, processing is delayed; see the status page.

Client libraries buffer events and send them every few seconds; call `flush()` before a script or
serverless function exits, or the last events are lost.""",
    ),
    (
        "troubleshooting/slow-dashboards",
        "Dashboards are slow or time out",
        ["troubleshooting"],
        """# Dashboards are slow or time out

Dashboards are computed when they are opened and cached for 10 minutes. A chart that takes longer than
60 seconds times out with *Query took too long*.

Common causes and fixes:

- **Long date ranges on raw events**: use weekly or monthly granularity, or a shorter range.
- **Breakdowns by high-cardinality properties** (user ids, URLs with query strings): break down by a
  coarser property or limit the breakdown to the top 20 values.
- **Many charts on one dashboard**: dashboards with more than 25 charts load in batches; split them.
- **Regex filters**: prefer *equals* or *contains* filters, which use indexes.

Self-hosted deployments should check ClickHouse memory: a query that exceeds
`max_memory_usage` fails instead of slowing down. Enterprise dashboards can be pre-computed on a
schedule so that they open instantly.""",
    ),
    (
        "troubleshooting/login",
        "Can't log in",
        ["troubleshooting", "accounts"],
        """# Can't log in

Work through these steps:

- **"Invalid email or password"**: reset your password. If you signed up with Google, Microsoft or
  SSO, use that button instead; you have no Fernhill password.
- **"Your workspace requires single sign-on"**: use **Sign in with SSO** and your company email.
- **Two-factor code rejected**: check that your phone's clock is set automatically; TOTP codes depend
  on the time. Use a recovery code if you lost the device.
- **Account locked**: after 10 failed attempts the account is locked for 30 minutes.
- **Redirect loop**: clear cookies for `fernhill.io` or try a private window; browser extensions that
  block third-party cookies can break SSO.

Self-hosted users who cannot log in after a restart should check that `FERNHILL_SECRET_KEY` and
`FERNHILL_DOMAIN` did not change.""",
    ),
    (
        "troubleshooting/webhook-failures",
        "Webhook deliveries are failing",
        ["troubleshooting", "webhooks"],
        """# Webhook deliveries are failing

Open the endpoint's delivery log and look at the response status of the failed attempts:

- **Timeout**: your endpoint took more than 10 seconds. Acknowledge immediately and process the
  payload in a background job.
- **Connection error / TLS error**: the URL is unreachable from the internet or its certificate is
  invalid or self-signed. Fernhill only delivers to public HTTPS endpoints.
- **401 or 403 from your server**: your signature check rejects the request. Verify against the raw
  body and make sure you use this endpoint's signing secret, not another endpoint's.
- **5xx**: an error in your handler; check your application logs for the delivery's `id`.

Firewalls that allow-list source addresses must allow Fernhill's delivery IP ranges, published at
`https://fernhill.io/ips.json`. After fixing the problem, replay the failed deliveries from the log.""",
    ),
    (
        "troubleshooting/rate-limited",
        "Getting 429 Too Many Requests",
        ["troubleshooting", "api"],
        """# Getting 429 Too Many Requests

A `429 rate_limited` response means one API key exceeded its rate limit. The response's `Retry-After`
header tells you how many seconds to wait.

To stop hitting the limit:

- Batch events with `/events/batch` (up to 500 per request) instead of one request per event.
- Use the official client libraries, which batch and back off automatically.
- Give each service its own API key, since limits apply per key.
- For queries, cache results on your side and avoid polling dashboards through the API in tight
  loops; the limit is 10 queries per second and 3 concurrent.

Events rejected with 429 are not stored, so make sure your client retries them. If you consistently
need more capacity, Enterprise plans can raise the limits.""",
    ),
    (
        "troubleshooting/contact-support",
        "Contacting support",
        ["troubleshooting"],
        """# Contacting support

Use the chat button in the app or email `support@fernhill.io`. Include your workspace id (shown under
**Settings > General**), what you expected and what happened, and for API problems the `request_id`
of a failing request.

Response targets by plan: Starter within 2 business days, Growth within 1 business day, Enterprise
within 4 hours (1 hour for a production outage, around the clock).

Billing questions, refunds and ownership transfers are handled by the billing team through the same
channels. Security issues should be reported to `security@fernhill.io`.

Before contacting us about an outage, check `status.fernhill.io`, where incidents are posted with
updates every 30 minutes.""",
    ),
]
"""``(id, title, tags, markdown text)`` for every section, in corpus (document) order."""

USER_PHRASES: dict[str, list[str]] = {
    "billing/overview": [
        "who gets billed and when",
        "how does fernhill charge us",
        "why is my bill different each month",
    ],
    "billing/plans": [
        "what's the difference between starter and growth",
        "how much is the enterprise tier",
        "can we upgrade to a bigger plan",
        "want to downgrade to the cheaper tier",
    ],
    "billing/invoices": [
        "where can I download last month's receipt",
        "need the invoice pdf for accounting",
        "our company address on the bill is wrong",
        "finance never got the invoice email",
    ],
    "billing/payment-methods": [
        "change the credit card on file",
        "our card expired, how do I put a new one",
        "can we pay by direct debit",
        "3ds popup never shows when adding the card",
    ],
    "billing/failed-payments": [
        "payment didn't go through",
        "card was declined on renewal",
        "dashboards went read only, says past due",
        "got an email that the charge failed",
    ],
    "billing/taxes": [
        "why are we charged VAT",
        "we're tax exempt",
        "where do I put our vat id",
        "remove the sales tax from the invoice",
    ],
    "billing/seats": [
        "how much does adding a user cost",
        "charged for people who left",
        "limit how many licences admins can add",
        "prorated seat charge on the bill",
    ],
    "billing/usage": [
        "we went over our event limit",
        "huge overage charge this month",
        "how many events have we used",
        "stop ingestion before we pay extra",
    ],
    "billing/refunds": [
        "can I get my money back",
        "do you refund annual plans",
        "refund rules",
        "is there a money back guarantee",
    ],
    "refunds/request": [
        "how do I ask for a refund",
        "want a refund for the last charge",
        "where's the refund button",
        "how long until the refund shows on my card",
    ],
    "refunds/partial": [
        "refund just part of the invoice",
        "what happened to my credit balance",
        "account credit vs refund",
        "only refund the extra seats",
    ],
    "refunds/chargebacks": [
        "my bank disputed a charge",
        "workspace suspended after a chargeback",
        "don't recognise this charge",
        "how to withdraw a dispute",
    ],
    "refunds/cancel-subscription": [
        "cancel my subscription",
        "stop the renewal",
        "close our plan",
        "unsubscribe from the paid plan",
    ],
    "accounts/signup": [
        "make a new workspace",
        "sign up for a trial",
        "pick eu or us region",
        "my colleague already has an account for our company",
    ],
    "accounts/roles": [
        "what can an analyst do",
        "give someone admin rights",
        "hide emails from analysts",
        "permission levels",
    ],
    "accounts/invite": [
        "add a teammate",
        "invite people to the workspace",
        "remove someone who left",
        "invitation link expired",
    ],
    "accounts/password-reset": [
        "forgot my password",
        "reset password email never arrives",
        "change my password",
        "password reset link not working",
    ],
    "accounts/mfa": [
        "lost my phone with the 2fa app",
        "set up two factor",
        "recovery codes",
        "require 2fa for everyone",
    ],
    "accounts/sso": [
        "set up okta login",
        "saml config",
        "sso says invalid audience",
        "enforce single sign on",
        "map azure groups to roles",
    ],
    "accounts/transfer-ownership": [
        "make someone else the owner",
        "the owner left the company",
        "transfer the workspace to my manager",
    ],
    "accounts/delete": [
        "delete our workspace",
        "close my account for good",
        "remove everything we stored",
        "restore a deleted workspace",
    ],
    "api/overview": [
        "where do I start with the api",
        "what's the base url",
        "is there a python client",
        "rest endpoints list",
    ],
    "api/authentication": [
        "where do I get an api key",
        "401 invalid key",
        "rotate the secret key",
        "which key goes in the browser",
    ],
    "api/rate-limits": [
        "how many requests per second can I send",
        "what are the api limits",
        "ratelimit headers",
    ],
    "api/pagination": [
        "how do I get the next page of users",
        "cursor pagination",
        "invalid_cursor error",
        "page=2 doesn't work anymore",
    ],
    "api/errors": [
        "what does this error code mean",
        "api returns 400",
        "got a 413",
        "request id for support",
    ],
    "api/events": [
        "how do I send an event",
        "track a purchase from the backend",
        "duplicate events after retry",
        "batch upload events",
    ],
    "api/query": ["pull report numbers via api", "run a query programmatically", "query keeps returning 202"],
    "api/versioning": ["is v1 going away", "migrate from api v1", "sunset header in responses"],
    "webhooks/overview": [
        "get notified when something happens",
        "do you have webhooks",
        "push alerts to our system",
    ],
    "webhooks/setup": ["add a webhook url", "where's the signing secret", "create an endpoint for callbacks"],
    "webhooks/signatures": [
        "verify the webhook signature",
        "hmac doesn't match",
        "Fernhill-Signature header",
        "signature check fails",
    ],
    "webhooks/retries": [
        "do you retry failed webhooks",
        "endpoint got disabled",
        "webhooks arrive out of order",
        "getting the same webhook twice",
    ],
    "webhooks/event-types": [
        "which events can I subscribe to",
        "webhook when export is ready",
        "payload format for alerts",
    ],
    "webhooks/testing": ["send a test webhook", "delivery log", "replay a webhook", "test webhooks locally"],
    "deployment/self-hosted": [
        "can we host it ourselves",
        "on prem install requirements",
        "hardware needed for self hosting",
    ],
    "deployment/docker": [
        "install with docker compose",
        "502 bad gateway after docker up",
        "try it on one server",
    ],
    "deployment/kubernetes": ["helm chart", "deploy on k8s", "autoscale the ingest pods"],
    "deployment/configuration": [
        "which env vars do I need",
        "config options",
        "smtp settings for invites",
        "set retention on our install",
    ],
    "deployment/upgrades": [
        "upgrade to the new release",
        "helm upgrade failed",
        "migration job failed",
        "can I skip versions",
    ],
    "deployment/backups": ["how do we back up clickhouse", "restore from backup", "disaster recovery plan"],
    "export/csv": ["download the data as csv", "export raw events", "export link expired"],
    "export/warehouse": ["sync to snowflake", "send data to bigquery", "warehouse destination paused"],
    "export/scheduled": ["send an export every monday", "automatic export to s3", "recurring export to sftp"],
    "export/gdpr": [
        "a user wants their data deleted",
        "gdpr request",
        "right to be forgotten",
        "customer asked for a copy of their data",
    ],
    "export/retention": ["how long do you keep data", "old events disappeared", "shorten data retention"],
    "troubleshooting/missing-events": [
        "events not showing up",
        "data missing from the dashboard",
        "tracked events never arrive",
        "last events lost from lambda",
    ],
    "troubleshooting/slow-dashboards": ["dashboard takes forever", "query took too long", "charts time out"],
    "troubleshooting/login": ["can't log in", "stuck in a login loop", "account locked", "2fa code rejected"],
    "troubleshooting/webhook-failures": [
        "webhooks failing",
        "webhook timeouts",
        "tls error on our endpoint",
        "deliveries all red in the log",
    ],
    "troubleshooting/rate-limited": ["getting 429s", "too many requests error", "api throttling us"],
    "troubleshooting/contact-support": [
        "talk to a human",
        "how do I reach support",
        "is there an outage",
        "open a ticket",
    ],
}
"""How users ask for each section: their words overlap the docs' titles only in part, on purpose."""
