"""The stblab web app: server-rendered pages and a JSON API over the RMA database.

Start it with ``stblab web [--db URL] [--host 127.0.0.1] [--port 8080]``; add accounts with
``stblab web adduser NAME --role warranty``. The app itself is built by :func:`lab.web.app.create_app`.

This package's ``__init__`` imports nothing on purpose: importing a part of it must not pull in
the rest. Its tables (accounts, sessions) live with the RMA models in :mod:`lab.rma.web_schema`.
"""
