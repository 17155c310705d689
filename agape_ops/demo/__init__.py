"""The demo world: the backend's trouble on local servers, to try or rehearse every runbook.

``world`` says what is wrong (rows, queues, what Paystack and the admin API answer), ``rows``
and ``queues`` lay it out in PostgreSQL and Redis, ``standins`` answer for Paystack, its status
page, Prometheus and the admin API on loopback, and ``sandbox`` puts it together on the local
servers without ever touching the configured backend.
"""
