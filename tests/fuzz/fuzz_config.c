/* Fuzz target `config`: the input is a mosquitto.conf file given to config_load_buffer(); a
 * first byte below 0x10 instead chooses the command line (-p ports, -v, -d). A loaded config must
 * be complete (listeners, effective security strings); a refused one must come with a `fuzz.conf:`
 * message. Inputs naming include_dir are skipped so that a run never reads the file system.
 *
 * The broker sources are compiled into this file, so the target needs nothing but libc (the
 * replay build links it like the codec target). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/config.c"
#include "../../broker/log.c"
#include "../../broker/mem.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_config: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_args args;
    struct config cfg;
    char err[512];
    memset(&args, 0, sizeof args);
    if (size > 0 && data[0] < 0x10) { /* a leading control byte selects the command line */
        uint8_t mode = data[0];
        data++;
        size--;
        args.verbose = mode & 1;
        args.daemon = (mode >> 1) & 1;
        args.port_count = (mode >> 2) & 3;
        for (size_t i = 0; i < args.port_count; i++)
            args.ports[i] = (uint16_t)(1000 + i);
    }
    if (memmem(data, size, "include_dir", 11) != NULL) return 0;
    int rc =
        config_load_buffer("fuzz.conf", (const char *)data, size, &args, &cfg, err, sizeof err);
    if (rc != 0) {
        CHECK(rc < 0);
        CHECK(strncmp(err, "fuzz.conf", 9) == 0);
        CHECK(memchr(err, '\n', strlen(err)) == NULL);
        return 0;
    }
    CHECK(cfg.listener_count > 0);
    CHECK(cfg.persistence_location != NULL && cfg.user != NULL);
    CHECK(cfg.max_qos <= 2 && cfg.node_id >= 1);
    CHECK(cfg.verbose == args.verbose);
    CHECK(!cfg.local_only || cfg.listener_count == 2 * (args.port_count ? args.port_count : 1));
    for (size_t i = 0; i < cfg.listener_count; i++) {
        const struct config_listener *l = &cfg.listeners[i];
        CHECK(l->port != 0);
        CHECK(l->max_qos <= 2);
        CHECK(l->security.auto_id_prefix != NULL);
        CHECK(l->protocol == CONFIG_PROTOCOL_MQTT);
        if (!cfg.per_listener_settings && !l->local_only) {
            CHECK((l->security.password_file == NULL) == (cfg.security.password_file == NULL));
            CHECK(l->security.allow_anonymous == cfg.security.allow_anonymous);
        }
    }
    config_free(&cfg);
    return 0;
}
