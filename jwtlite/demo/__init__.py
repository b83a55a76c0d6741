"""The demo front-end, apart from the layers: it only speaks HTTP to the API.

Holds the page's static files (``index.html``, ``app.js``, ``style.css``; plain HTML, CSS
and JavaScript, no build step) and :mod:`jwtlite.demo.server`, which serves them on a
second origin. It must never import the service, the store or the web layer.
"""
