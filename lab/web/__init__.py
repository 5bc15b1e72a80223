"""The stblab web app: server-rendered pages and a JSON API over the RMA database.

Start it with ``stblab web [--db URL] [--host 127.0.0.1] [--port 8080]``; add accounts with
``stblab web adduser NAME --role warranty``. The app itself is built by :func:`lab.web.app.create_app`.

This package's ``__init__`` imports nothing on purpose: :mod:`lab.web.schema` is imported by the RMA
models (its tables share their migrations), and that must not pull in FastAPI.
"""
