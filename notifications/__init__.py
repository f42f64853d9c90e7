"""Events (for agents and dashboards, `GET /api/v1/events/`) and conflict e-mail.

The engine, the outbox and polling stay unaware of this app as far as possible: conflicts and
sync runs are observed through `post_save` signals (`signals.py`); a failed push, written with
a queryset `update()` that sends no signal, records its event with one `event_record` call.
"""
