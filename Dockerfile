# cairn's container image: one static binary on an empty image (no shell, no libc, no package
# manager), run as a non-root user. See docs/deploy.md; compose.yaml runs it with PostgreSQL and Ollama.
#
#   docker build -t cairn --build-arg VERSION="$(git describe --tags --always --dirty)" .
#   docker run -e DATABASE_URL=... -e CAIRN_AUTH_TOKEN=... -p 8080:8080 cairn
#
# The image serves Streamable HTTP at /mcp and SSE at /sse on port 8080; off loopback cairn
# refuses to start without authentication (CAIRN_AUTH_TOKEN, CAIRN_AUTH_TOKENS_FILE, ...) and
# needs a database (DATABASE_URL or PG*). `cairn worker` and `cairn migrate` run from the same
# image with another command. It has no pg_dump: run `cairn backup` from an image with
# PostgreSQL's client programs (docs/deploy.md, "Backups").
#
# cmd/cairn/static_test.go builds the binary with the RUN go build line below, exactly as written,
# checks that it is static and runs this file's ENTRYPOINT, CMD and HEALTHCHECK against it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO: pg_query_go compiles PostgreSQL's parser in C. Linked statically against glibc; the netgo
# and osusergo tags keep glibc's NSS (getaddrinfo, getpwuid), which a static binary cannot load, out.
RUN CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo -ldflags "-s -w -X main.version=${VERSION} -linkmode external -extldflags '-static'" -o /out/cairn ./cmd/cairn
# What the empty image needs besides the binary: CA certificates (TLS to PostgreSQL, Ollama, an
# issuer's JWKS), a passwd entry for the non-root user, and a writable /tmp.
RUN mkdir -p /out/etc/ssl/certs /out/tmp && chmod 1777 /out/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /out/etc/passwd \
 && echo 'nonroot:x:65532:' > /out/etc/group

FROM scratch
COPY --from=build /out/etc /etc
COPY --from=build /out/tmp /tmp
ARG VERSION=dev
LABEL org.opencontainers.image.title="cairn" \
      org.opencontainers.image.description="Workflow state, agent metrics and a knowledge graph for AI agents, in PostgreSQL, over MCP" \
      org.opencontainers.image.source="https://github.com/cairn-mcp/cairn" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/cairn /cairn
USER 65532:65532
EXPOSE 8080
# SIGTERM: stop accepting, let calls in flight finish (up to 15 s), then jobs (10 s, then they are
# cancelled and River queues them again): up to about 30 s in all. docker stop waits only 10 s by
# default: give cairn 45 s (docker stop -t 45, compose stop_grace_period, ECS stopTimeout).
STOPSIGNAL SIGTERM
# /healthz answers once serve is connected and migrated, and while it runs; a `cairn worker`
# container has no HTTP listener: run it with the health check disabled.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/cairn", "healthcheck"]
ENTRYPOINT ["/cairn"]
CMD ["serve", "--transport", "http", "--addr", "0.0.0.0:8080"]
