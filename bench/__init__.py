"""`make bench`: the benchmark harness (`python -m bench.run`).

Real run: PostgreSQL + Redis, the web under gunicorn, a Celery worker, the fake trackers in
their own processes on loopback. Smoke run (`--smoke`, used by the test suite): the same
benchmarks at tiny sizes on the embedded defaults (SQLite, in-process web and worker).
"""
