# entrypoint: a container init (PID 1) that reaps zombies, forwards signals,
# owns the app's listening sockets and hot-swaps the app without dropping a
# connection. See docker/README.md.
#
# Targets (the last one is the default):
#   demo        the example app under entrypoint (docker-compose.yml uses it)
#   entrypoint  /entrypoint alone, FROM scratch: copy it into your own image
#
#   docker build -t entrypoint .
#   docker build --target demo -t entrypoint-demo .
#
# Offline / air-gapped: no base image is pulled except GO_IMAGE, which
# docker/make-builder-image.sh assembles from the local Go toolchain and a
# module cache for this go.mod, and tags as golang:1.26.
#
# Written for both builders: the legacy one builds every stage before the
# target, BuildKit only the needed ones; no RUN --mount, no heredocs.

ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first, so a source change does not re-fetch them. With the
# offline builder (GOPROXY=off) the cache is already full and this is a
# no-op; with the official image it fetches through the proxy.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ENV CGO_ENABLED=0 GOTOOLCHAIN=local
# -trimpath and no VCS stamp: the same source gives the same binary.
RUN go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/entrypoint ./cmd/entrypoint \
 && go build -trimpath -buildvcs=false -ldflags "-s -w" \
        -o /out-demo/app ./examples/app
# scratch has no shell to make links with: make them here and COPY the
# directory, which keeps symlinks. `kill` (argv[0]) makes the binary behave
# as kill(1), so `docker exec C kill -USR1 1` works without a shell;
# /bin/entrypoint puts the CLI on the default PATH (`docker exec C
# entrypoint reload`).
RUN mkdir -p /rootfs/bin /rootfs/tmp \
 && chmod 1777 /rootfs/tmp \
 && cp /out/entrypoint /rootfs/entrypoint \
 && ln -s /entrypoint /rootfs/bin/kill \
 && ln -s /entrypoint /rootfs/bin/entrypoint

# The image every target shares: no shell, no libc, no CA certificates
# (entrypoint makes no outbound TLS connection; add them in your own image if
# your app does).
FROM scratch AS base
COPY --from=build /rootfs/ /
ARG VERSION=dev
LABEL org.opencontainers.image.title="entrypoint" \
      org.opencontainers.image.description="Container init (PID 1): reaps zombies, forwards signals, owns listening sockets, hot-swaps the app without dropping connections" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/entrypoint/entrypoint"
ENV PATH=/bin
# 65532 is distroless' "nonroot": no passwd entry needed. A non-root user
# cannot bind ports below 1024: use ports >= 1024, or see docker/README.md
# (net.ipv4.ip_unprivileged_port_start, CAP_NET_BIND_SERVICE).
USER 65532:65532
# entrypoint drains the app on SIGTERM and exits with the app's code; keep
# `docker stop -t` (default 10 s) above preStopDelay + drainTimeout.
STOPSIGNAL SIGTERM
EXPOSE 9090
# /readyz on the health listener (default :9090). Disable with
# HEALTHCHECK NONE in an image that runs --health-listen off.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/entrypoint", "probe", "ready"]
ENTRYPOINT ["/entrypoint", "--"]

FROM base AS demo
COPY --from=build /out-demo/app /app
# A default config so the image runs alone; docker-compose.yml bind-mounts
# docker/demo/config over it.
COPY docker/demo/config/ /config/
LABEL org.opencontainers.image.title="entrypoint-demo"
EXPOSE 8080
# Lame duck: a stopped generation still answers kept-alive connections
# (with "Connection: close") for up to 2 s, so a client whose request is
# already on such a connection gets an answer, not an EOF. entrypoint keeps
# the listening socket open; closing kept-alive connections politely is the
# app's half of a swap without errors.
ENV APP_LAME_DUCK=2s
# The app gets :8080 as fd 3 and is swapped on SIGUSR1, `entrypoint reload`
# or a change in /config (bind-mount a directory there).
ENTRYPOINT ["/entrypoint", "--listen", ":8080", "--watch", "/config", "--"]
CMD ["/app"]

FROM base AS entrypoint
