// Package recipes runs every recipe of docs/recipes.md: a well-known
// server from the Debian archive (nginx, HAProxy, lighttpd, gunicorn,
// uWSGI, uvicorn) under the real entrypoint binary, hot-swapped ten times
// under load with a new connection per request, and not one request may
// fail. The command lines here are the recipes' command lines; change
// both together.
package recipes
