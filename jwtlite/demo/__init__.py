"""The demo front-end's static files (``index.html``, ``app.js``, ``style.css``), as package data.

Served by :mod:`jwtlite.demo_server`; plain HTML, CSS and JavaScript, no build step.
"""
