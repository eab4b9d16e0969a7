/* Topic names, topic filters, shared subscriptions and the matcher (4.7, 4.8). */
#include "proto_test.h"

#define S(lit) (lit), sizeof(lit) - 1

/* A topic name: at least one character [MQTT-4.7.3-1], no wildcard [MQTT-4.7.1-1]
 * (5.0 [MQTT-4.7.0-1]), UTF-8 without U+0000 [MQTT-4.7.3-2]. */
static void topic_name_check(void **state)
{
    (void)state;
    assert_int_equal(mqtt_topic_name_check(S("a")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_name_check(S("/")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_name_check(S("sport/tennis/player1")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_name_check(S("$SYS/broker")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_name_check(S("a//b ")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_name_check(S("")), MQTT_ERR_TOPIC_EMPTY);
    assert_int_equal(mqtt_topic_name_check(S("+")), MQTT_ERR_TOPIC_WILDCARD);
    assert_int_equal(mqtt_topic_name_check(S("a/#")), MQTT_ERR_TOPIC_WILDCARD);
    assert_int_equal(mqtt_topic_name_check(S("a+b")), MQTT_ERR_TOPIC_WILDCARD);
    assert_int_equal(mqtt_topic_name_check(S("a\0b")), MQTT_ERR_UTF8_NULL);
    assert_int_equal(mqtt_topic_name_check(S("a\xED\xA0\x80")), MQTT_ERR_BAD_UTF8);
}

/* Valid filters: '#' last and alone in its level [MQTT-4.7.1-2], '+' alone in its level
 * [MQTT-4.7.1-3] (5.0 [MQTT-4.7.1-1], [MQTT-4.7.1-2]). */
static void topic_filter_accepts_valid(void **state)
{
    static const char *const ok[] = {"#",    "+",  "sport/#",    "sport/tennis/+",
                                     "+/+",  "/+", "+/tennis/#", "sport/+/player1",
                                     "a//b", "/",  "$SYS/#",     "+/",
                                     "//#"};
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (mqtt_topic_filter_check(ok[i], strlen(ok[i]), false) != MQTT_ERR_NONE)
            fail_msg("filter \"%s\" rejected", ok[i]);
    }
}

static void topic_filter_rejects_misplaced_wildcards(void **state)
{
    static const char *const bad[] = {"sport/tennis#",
                                      "sport/tennis/#/ranking",
                                      "#/a",
                                      "##",
                                      "sport+",
                                      "sport/+tennis",
                                      "++",
                                      "a/b+/c",
                                      "+a",
                                      "a#"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mqtt_topic_filter_check(bad[i], strlen(bad[i]), false) != MQTT_ERR_FILTER_INVALID)
            fail_msg("filter \"%s\" accepted", bad[i]);
    }
    assert_int_equal(mqtt_topic_filter_check(S(""), false), MQTT_ERR_FILTER_INVALID);
    assert_int_equal(mqtt_topic_filter_check(S("a\0"), false), MQTT_ERR_UTF8_NULL);
    assert_int_equal(mqtt_topic_filter_check(S("\xC0\x80"), false), MQTT_ERR_BAD_UTF8);
}

/* $share/<group>/<filter>: a non-empty group without '/', '+', '#' [MQTT-4.8.2-1]
 * [MQTT-4.8.2-2], followed by a valid filter. */
static void topic_filter_checks_shared(void **state)
{
    (void)state;
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a/+"), true), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/#"), true), MQTT_ERR_NONE);
    assert_int_equal(mqtt_topic_filter_check(S("$share//a"), true), MQTT_ERR_SHARE_INVALID);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g+/a"), true), MQTT_ERR_SHARE_INVALID);
    assert_int_equal(mqtt_topic_filter_check(S("$share/#/a"), true), MQTT_ERR_SHARE_INVALID);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g"), true), MQTT_ERR_SHARE_INVALID);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/"), true) != MQTT_ERR_NONE, true);
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a#"), true), MQTT_ERR_FILTER_INVALID);
    /* Without allow_shared it is an ordinary filter whose first level is "$share". */
    assert_int_equal(mqtt_topic_filter_check(S("$share/g/a"), false), MQTT_ERR_NONE);
}

static void topic_share_split(void **state)
{
    struct mqtt_str group, filter;
    (void)state;
    assert_true(mqtt_topic_share_split(S("$share/grp/sport/#"), &group, &filter));
    pt_assert_str_equal(group, "grp");
    pt_assert_str_equal(filter, "sport/#");
    assert_false(mqtt_topic_share_split(S("sport/#"), &group, &filter));
    assert_false(mqtt_topic_share_split(S("$shared/g/a"), &group, &filter));
    assert_false(mqtt_topic_share_split(S("$SYS/x"), &group, &filter));
}

static void topic_filter_has_wildcard(void **state)
{
    (void)state;
    assert_true(mqtt_filter_has_wildcard(S("#")));
    assert_true(mqtt_filter_has_wildcard(S("a/+/b")));
    assert_false(mqtt_filter_has_wildcard(S("a/b")));
    assert_false(mqtt_filter_has_wildcard(S("$SYS")));
}

static const struct {
    const char *filter;
    const char *topic;
    bool match;
} matches[] = {
    /* 4.7.1.2: the spec's own examples */
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/#", "sport", true}, /* '#' matches the parent level too */
    {"#", "sport/tennis", true},
    {"#", "/", true},
    /* 4.7.1.3 */
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true}, /* '+' matches an empty level */
    {"+", "sport", true},
    {"+", "/finance", false},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+/+", "a", false},
    {"+", "", true},
    {"a/+/c", "a//c", true},
    {"+/+/+", "//", true},
    {"sport/#", "sports", false},
    {"sport/tennis", "sport/tennis", true},
    {"sport/tennis", "sport/tennis/", false},
    {"sport/tennis", "Sport/tennis", false},
    {"a/b", "a", false},
    {"a", "a/b", false},
    {"+/#", "a", true},
    {"+/#", "a/b/c", true},
    /* [MQTT-4.7.2-1]: first-level wildcards do not match topics starting with '$' */
    {"#", "$SYS/broker/load", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"+", "$SYS", false},
    {"$SYS/#", "$SYS/broker/load", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS/#", "$SYS", true},
    {"a/#", "a/$b", true},
    {"a/+", "a/$b", true},
};

/* The table above: the spec's examples of 4.7.1, and topics starting with '$' not matched by
 * filters starting with a wildcard [MQTT-4.7.2-1]. */
static void topic_matcher_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
        bool got = mqtt_filter_matches(matches[i].filter, strlen(matches[i].filter),
                                       matches[i].topic, strlen(matches[i].topic));
        if (got != matches[i].match)
            fail_msg("filter \"%s\" topic \"%s\": %d, want %d", matches[i].filter, matches[i].topic,
                     got, matches[i].match);
    }
}

/* Matching compares bytes: no normalization, no case folding, no substitution [MQTT-4.7.3-4].
 * "é" precomposed (C3 A9) and decomposed (65 CC 81) are different topics, and so are levels
 * that differ in case, an empty level or a trailing '/'. A topic name a server sends matches
 * the subscription's filter by this one process [MQTT-3.3.2-3]. */
static void topic_matcher_does_not_normalize(void **state)
{
    static const char nfc[] = "caf\xC3\xA9";
    static const char nfd[] = "cafe\xCC\x81";
    (void)state;
    assert_true(mqtt_filter_matches(nfc, strlen(nfc), nfc, strlen(nfc)));
    assert_false(mqtt_filter_matches(nfc, strlen(nfc), nfd, strlen(nfd)));
    assert_false(mqtt_filter_matches(nfd, strlen(nfd), nfc, strlen(nfc)));
    assert_false(mqtt_filter_matches(S("a/B"), S("a/b")));
    assert_false(mqtt_filter_matches(S("a/b"), S("a//b")));
    assert_false(mqtt_filter_matches(S("a/b"), S("a/b/")));
    assert_false(mqtt_filter_matches(S("a/b"), S(" a/b")));
    assert_true(mqtt_filter_matches(S("+/b"), S("caf\xC3\xA9/b")));
}

/* Matching looks at the given lengths only. */
static void topic_matcher_uses_lengths(void **state)
{
    (void)state;
    assert_true(mqtt_filter_matches("a/b/c", 3, "a/bXYZ", 3));
    assert_false(mqtt_filter_matches("a/b", 3, "a/b/c", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topic_name_check),
        cmocka_unit_test(topic_filter_accepts_valid),
        cmocka_unit_test(topic_filter_rejects_misplaced_wildcards),
        cmocka_unit_test(topic_filter_checks_shared),
        cmocka_unit_test(topic_share_split),
        cmocka_unit_test(topic_filter_has_wildcard),
        cmocka_unit_test(topic_matcher_table),
        cmocka_unit_test(topic_matcher_does_not_normalize),
        cmocka_unit_test(topic_matcher_uses_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
