/* proto-bench: nanoseconds per packet to parse and to encode (size + write) with the proto/
 * codec, for a 64-byte-payload QoS 1 PUBLISH (3.1.1 and 5.0), a CONNECT with properties and a
 * SUBSCRIBE. Each figure is the median of several timed repetitions.
 *
 *   proto-bench [-n ITERATIONS] [-r REPETITIONS] [-c CASE]
 *
 * -c runs only the cases whose name contains CASE (e.g. -c "PUBLISH v5"), which lets an
 * instruction counter such as callgrind attribute its figures to one packet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define BIT(id) MQTT_PROP_BIT(MQTT_PROP_##id)

struct bench_case {
    const char *name;
    uint8_t version;
    struct mqtt_packet pkt;
    uint8_t wire[512];
    size_t len;
};

static volatile uint64_t sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double time_parse(const struct bench_case *c, long iterations)
{
    struct mqtt_parser p = {.version = c->version, .role = MQTT_ROLE_SERVER};
    struct mqtt_packet pkt;
    uint64_t acc = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        if (mqtt_parse(&p, c->wire, c->len, &pkt, NULL) != MQTT_PARSE_DONE) abort();
        acc += pkt.wire_len;
    }
    uint64_t t1 = now_ns();
    sink += acc;
    return (double)(t1 - t0) / (double)iterations;
}

static double time_encode(const struct bench_case *c, long iterations)
{
    uint8_t out[512];
    uint64_t acc = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
        size_t size = mqtt_encoded_size(&c->pkt, c->version);
        acc += mqtt_encode(&c->pkt, c->version, out, size);
        acc += out[size - 1];
    }
    uint64_t t1 = now_ns();
    sink += acc;
    return (double)(t1 - t0) / (double)iterations;
}

static const uint8_t payload[64] = {
    'p', 'a', 'y', 'l', 'o', 'a', 'd', '-', '6', '4', '-', 'b', 'y', 't', 'e', 's',
};
static const struct mqtt_user_prop user[] = {{{"region", 6}, {"eu-west", 7}}};
static const struct mqtt_topic_entry filters[] = {
    {{"sensors/+/temperature", 21}, {.qos = 1}},
    {{"alerts/#", 8}, {.qos = 2, .no_local = true, .retain_handling = MQTT_RH_SEND_IF_NEW}},
    {{"$share/workers/jobs/+", 21}, {.qos = 1}},
};

static void make_publish(struct bench_case *c, const char *name, uint8_t version)
{
    c->name = name;
    c->version = version;
    c->pkt.type = MQTT_PUBLISH;
    c->pkt.u.publish.qos = 1;
    c->pkt.u.publish.packet_id = 4242;
    c->pkt.u.publish.topic = MQTT_STR("sensors/room1/temperature");
    c->pkt.u.publish.payload = payload;
    c->pkt.u.publish.payload_len = sizeof payload;
}

static void make_connect(struct bench_case *c)
{
    static const uint8_t password[] = "secret-password";
    c->name = "CONNECT v5 + props";
    c->version = MQTT_V5;
    c->pkt.type = MQTT_CONNECT;
    struct mqtt_connect *k = &c->pkt.u.connect;
    k->version = MQTT_V5;
    k->clean_start = true;
    k->keepalive_s = 60;
    k->client_id = MQTT_STR("bench-client-0001");
    k->has_username = true;
    k->username = MQTT_STR("bench");
    k->has_password = true;
    k->password = (struct mqtt_bin){password, sizeof password - 1};
    struct mqtt_props *p = &c->pkt.props;
    p->present = BIT(SESSION_EXPIRY) | BIT(RECEIVE_MAXIMUM) | BIT(MAXIMUM_PACKET_SIZE) |
                 BIT(TOPIC_ALIAS_MAXIMUM) | BIT(REQUEST_PROBLEM_INFO);
    p->session_expiry_s = 3600;
    p->receive_maximum = 100;
    p->maximum_packet_size = 1 << 20;
    p->topic_alias_maximum = 16;
    p->request_problem_info = 1;
    p->user = user;
    p->user_count = 1;
}

static void make_subscribe(struct bench_case *c)
{
    c->name = "SUBSCRIBE v5 3 filters";
    c->version = MQTT_V5;
    c->pkt.type = MQTT_SUBSCRIBE;
    c->pkt.u.subscribe.packet_id = 7;
    c->pkt.u.subscribe.topics.list = filters;
    c->pkt.u.subscribe.topics.count = 3;
    c->pkt.props.sub_id = 12;
    c->pkt.props.sub_id_count = 1;
}

int main(int argc, char **argv)
{
    long iterations = 1000000;
    int reps = 9;
    const char *only = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:r:c:h")) != -1) {
        switch (opt) {
        case 'n':
            iterations = atol(optarg);
            break;
        case 'r':
            reps = atoi(optarg);
            break;
        case 'c':
            only = optarg;
            break;
        default:
            fprintf(stderr, "usage: %s [-n ITERATIONS] [-r REPETITIONS] [-c CASE]\n", argv[0]);
            return 2;
        }
    }
    if (iterations < 1 || reps < 1 || reps > 101) {
        fprintf(stderr, "proto-bench: bad -n or -r\n");
        return 2;
    }

    static struct bench_case cases[4];
    make_publish(&cases[0], "PUBLISH v3.1.1 QoS1 64B", MQTT_V311);
    make_publish(&cases[1], "PUBLISH v5 QoS1 64B", MQTT_V5);
    make_connect(&cases[2]);
    make_subscribe(&cases[3]);

    printf("%-26s %6s %14s %14s\n", "packet", "bytes", "parse ns/pkt", "encode ns/pkt");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bench_case *c = &cases[i];
        if (only && !strstr(c->name, only)) continue;
        c->len = mqtt_encode(&c->pkt, c->version, c->wire, sizeof c->wire);
        if (c->len == 0) {
            fprintf(stderr, "proto-bench: cannot encode %s\n", c->name);
            return 1;
        }
        double parse[101], encode[101];
        time_parse(c, iterations / 10 + 1); /* warm up */
        time_encode(c, iterations / 10 + 1);
        for (int r = 0; r < reps; r++) {
            parse[r] = time_parse(c, iterations);
            encode[r] = time_encode(c, iterations);
        }
        printf("%-26s %6zu %14.1f %14.1f\n", c->name, c->len, median(parse, reps),
               median(encode, reps));
    }
    printf("(medians of %d repetitions of %ld iterations)\n", reps, iterations);
    return 0;
}
