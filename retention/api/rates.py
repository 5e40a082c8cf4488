"""The API's default request rates per client, by throttle scope.

A module of its own, importing nothing, so the settings (which cannot import the API while Django is being
configured) and the throttles read the same values.
"""

DEFAULT_RATES = {
    # One integration speaks for a whole call centre: a thousand agents at peak make some 15 requests a second
    # (advice, offer presented, answer), and a CRM catching up on a backlog sends them back to back, about 40 a
    # second at a recommendation's 25 ms over HTTP. 50 a second lets both through and still keeps one client gone
    # wild to about one core. Counted per second, the throttle's history (a timestamp per request in the window)
    # stays at 50 entries instead of the 3,000 of a minute's worth.
    "api_client": "50/second",
    # Bulk upserts and scoring do thousands of rows per request: a smaller allowance on top of the general one.
    "api_client_bulk": "60/minute",
}
