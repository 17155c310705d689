"""The Slack surface: alert threads, the run card, buttons, modals, `/ops` and the Home tab.

It renders the engine's view of a run as Block Kit (``blocks``), turns clicks, submissions and
commands into engine commands (``listeners``), sends everything the engine commits to Slack once
across replicas (``relay``) through a paced, rate-limit-aware outbox (``outbox``), and serves it
over HTTP or Socket Mode (``server``).
"""
