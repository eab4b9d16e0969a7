/* starling: one MQTT broker node. `starling [-c FILE] [-p PORT] [-d] [-v] [-h]` with
 * mosquitto's meanings. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "broker.h"
#include "config.h"
#include "log.h"

static int main_write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    fprintf(f, "%ld\n", (long)getpid());
    if (fclose(f) != 0) return -errno;
    return 0;
}

static void main_close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int main(int argc, char *argv[])
{
    struct config_args args;
    struct config cfg;
    char err[1024];
    int rc = config_parse_args(argc, argv, &args, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "Error: %s\n\n%s", err, config_usage());
        return 1;
    }
    if (args.help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    rc = config_load(args.config_file, &args, &cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    rc = log_open(&cfg);
    if (rc < 0) {
        fprintf(stderr, "Error: cannot open the log: %s\n", strerror(-rc));
        config_free(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.daemon && daemon(1, 0) < 0) {
        log_at(LOG_TYPE_ERROR, "Error: cannot become a daemon: %s.", strerror(errno));
        log_close();
        config_free(&cfg);
        return 1;
    }
    if (cfg.pid_file && (rc = main_write_pid_file(cfg.pid_file)) < 0) {
        log_at(LOG_TYPE_ERROR, "Error: cannot write pid file %s: %s.", cfg.pid_file, strerror(-rc));
        log_close();
        config_free(&cfg);
        return 1;
    }
    log_at(LOG_TYPE_NOTICE, "Starling version %s starting", STARLING_VERSION);
    if (cfg.config_file) log_at(LOG_TYPE_NOTICE, "Config loaded from %s.", cfg.config_file);
    if (cfg.local_only)
        log_at(LOG_TYPE_NOTICE,
               "Starting in local only mode. Connections will only be possible from clients "
               "running on this machine.");

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct broker *b = NULL;
    int exit_code = 0;
    rc = broker_new(&loop, &cfg, &b);
    if (rc == 0)
        rc = broker_start(b, err, sizeof err);
    else
        snprintf(err, sizeof err, "out of memory");
    if (rc < 0) {
        log_at(LOG_TYPE_ERROR, "Error: %s.", err);
        exit_code = 1;
        if (b) broker_stop(b);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    /* Anything still open (it should not be) is closed before the broker is freed. */
    uv_walk(&loop, main_close_walk_cb, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    broker_free(b);
    if (uv_loop_close(&loop) != 0)
        log_at(LOG_TYPE_WARNING, "Warning: the event loop did not close cleanly.");
    if (cfg.pid_file) unlink(cfg.pid_file);
    log_close();
    config_free(&cfg);
    return exit_code;
}
