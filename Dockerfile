# Starling container image: debian:12-slim with Debian's runtime libraries.
#   docker build -t starling:0.1.0 .
#   docker run --rm -p 1883:1883 starling:0.1.0            # one node, default config
# The Helm chart (helm/starling) runs `starling -c /run/starling/starling.conf` as user 10001
# with a read-only root filesystem; the data dir is /var/lib/starling.

# ---- build: the -dev packages and the toolchain ----
FROM debian:12-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libuv1-dev libraft-dev libwolfssl-dev liblmdb-dev libxxhash-dev \
        libwslay-dev libhttp-parser-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
    && cmake --build /build -j"$(nproc)" \
    && mkdir -p /out \
    && install -m 0755 -s /build/bin/starling /out/ \
    && for tool in starling-ctl starling-passwd starling-bench; do \
           if [ -x "/build/bin/$tool" ]; then install -m 0755 -s "/build/bin/$tool" /out/; fi; \
       done

# ---- runtime: only the shared libraries the binaries link, and mosquitto-clients ----
FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libuv1 libraft2 libwolfssl35 liblmdb0 libxxhash0 libwslay1 libhttp-parser2.9 \
        mosquitto-clients ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 starling \
    && useradd --system --uid 10001 --gid starling --home-dir /var/lib/starling \
        --no-create-home --shell /usr/sbin/nologin starling \
    && install -d -o starling -g starling -m 0750 /var/lib/starling \
    && install -d -m 0755 /etc/starling \
    && printf '%s\n' \
        '# Default single-node configuration (mosquitto.conf syntax). Mount your own at' \
        '# /etc/starling/starling.conf or pass -c FILE.' \
        'listener 1883' \
        'allow_anonymous true' \
        'persistence true' \
        'persistence_location /var/lib/starling' \
        'log_dest stdout' \
        >/etc/starling/starling.conf
COPY --from=build /out/ /usr/local/bin/
# Fails the build when a runtime library is missing.
RUN ! ldd /usr/local/bin/* | grep 'not found'
USER 10001:10001
WORKDIR /var/lib/starling
VOLUME /var/lib/starling
EXPOSE 1883 8883 9001 7700 8088
STOPSIGNAL SIGTERM
ENTRYPOINT ["starling"]
CMD ["-c", "/etc/starling/starling.conf"]
