# syntax=docker/dockerfile:1
# Build: docker build -t ollama-gateway .
# Run:   docker run -d -v /path/to/config.json:/config.json -p 8080:8080 ollama-gateway
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The same flags .ci/run builds with, so CI checks this line.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ollama-gateway ./cmd/ollama-gateway

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ollama-gateway /ollama-gateway
ENV OLLAMA_GATEWAY_CONFIG=/config.json
EXPOSE 8080
USER nonroot:nonroot
# Key writes to a single-file mount of /config.json keep their crash
# recovery copy in $TMPDIR, /tmp by default (mode 01777 in distroless; a
# base image without a writable /tmp would need TMPDIR set).
ENTRYPOINT ["/ollama-gateway"]
