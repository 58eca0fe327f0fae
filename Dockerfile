# qrauthd in a container: a static binary on distroless, run as a user with
# no privileges, its database on the /data volume.
#
#   docker build --build-arg VERSION=v0.2.0 -t qrauth .
#   docker run -p 8080:8080 -v qrauth-data:/data -e QRAUTH_ORIGIN=https://login.example.com qrauth
#
# Images are pinned by tag; a release pins them by digest as well.

# The builder runs on the build machine's platform and cross-compiles for
# the target's (docker buildx --platform linux/arm64 needs no emulation).
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first: their layer is reused while only our code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-docker
# Set by BuildKit from --platform; linux/amd64 where nothing sets them.
ARG TARGETOS
ARG TARGETARCH
# The release flags (scripts/release): static, no build paths, no VCS
# state, the version stamped for `qrauthd version`.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} GOFLAGS= \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X github.com/qrauth/qrauth/internal/buildinfo.Version=$VERSION" \
      -o /out/ ./cmd/qrauthd \
 && mkdir /out/data

# distroless/static: CA certificates, time zones and a passwd entry for
# nonroot (65532), no shell. The HEALTHCHECK therefore runs the binary.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/qrauthd /usr/local/bin/qrauthd
# An empty /data owned by nonroot: a new named volume copies its owner, so
# the server can create its database there.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080
# Listen on every interface of the container; the database and the
# operator socket on the volume (`docker exec … qrauthd admin users`).
# Set QRAUTH_ORIGIN to the public address: it goes into every QR code.
ENV QRAUTH_ADDR=0.0.0.0:8080 \
    QRAUTH_ORIGIN=http://localhost:8080 \
    QRAUTH_DATA=/data/qrauth.db \
    QRAUTH_ADMIN_SOCKET=/data/admin.sock
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/qrauthd", "healthcheck", "-url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/qrauthd"]
