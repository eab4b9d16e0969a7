/* UTF-8 validation: well-formed per RFC 3629 [MQTT-1.5.4-1], no U+0000 [MQTT-1.5.4-2]
 * (3.1.1: [MQTT-1.5.3-1], [MQTT-1.5.3-2]). */
#include "proto_test.h"

#define S(lit) (lit), sizeof(lit) - 1

/* ASCII, 2-, 3- and 4-byte characters, the largest code point, the empty string. */
static void utf8_accepts_well_formed(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_utf8_check(S("sport/tennis")), MQTT_ERR_NONE);
    assert_int_equal(mqtt_utf8_check(S("\xC2\x80")), MQTT_ERR_NONE);         /* U+0080 */
    assert_int_equal(mqtt_utf8_check(S("caf\xC3\xA9")), MQTT_ERR_NONE);      /* é */
    assert_int_equal(mqtt_utf8_check(S("\xE0\xA0\x80")), MQTT_ERR_NONE);     /* U+0800 */
    assert_int_equal(mqtt_utf8_check(S("\xED\x9F\xBF")), MQTT_ERR_NONE);     /* U+D7FF */
    assert_int_equal(mqtt_utf8_check(S("\xEE\x80\x80")), MQTT_ERR_NONE);     /* U+E000 */
    assert_int_equal(mqtt_utf8_check(S("\xEF\xBF\xBF")), MQTT_ERR_NONE);     /* U+FFFF */
    assert_int_equal(mqtt_utf8_check(S("\xF0\x90\x80\x80")), MQTT_ERR_NONE); /* U+10000 */
    assert_int_equal(mqtt_utf8_check(S("\xF4\x8F\xBF\xBF")), MQTT_ERR_NONE); /* U+10FFFF */
}

/* A BOM is an ordinary character, neither skipped nor rejected: 5.0 [MQTT-1.5.4-3], 3.1.1
 * [MQTT-1.5.3-3]. */
static void utf8_accepts_bom(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("\xEF\xBB\xBF"
                                       "a")),
                     MQTT_ERR_NONE);
}

/* U+0000 is distinct from other bad input [MQTT-1.5.4-2]. */
static void utf8_rejects_nul(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("\0")), MQTT_ERR_UTF8_NULL);
    assert_int_equal(mqtt_utf8_check(S("a\0b")), MQTT_ERR_UTF8_NULL);
}

/* Surrogates U+D800..U+DFFF are ill-formed [MQTT-1.5.4-1]. */
static void utf8_rejects_surrogates(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("\xED\xA0\x80")), MQTT_ERR_BAD_UTF8); /* U+D800 */
    assert_int_equal(mqtt_utf8_check(S("\xED\xBF\xBF")), MQTT_ERR_BAD_UTF8); /* U+DFFF */
    assert_int_equal(mqtt_utf8_check(S("a\xED\xB0\x80z")), MQTT_ERR_BAD_UTF8);
}

/* Overlong encodings are ill-formed: C0 80 (an overlong U+0000 as in "modified UTF-8"),
 * C1 BF, E0 80 80, E0 9F BF, F0 80 80 80, F0 8F BF BF. */
static void utf8_rejects_overlong(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("\xC0\x80")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xC1\xBF")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xE0\x80\x80")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xE0\x9F\xBF")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xF0\x80\x80\x80")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xF0\x8F\xBF\xBF")), MQTT_ERR_BAD_UTF8);
}

/* Bytes that never appear in UTF-8, code points past U+10FFFF, stray continuation bytes and
 * sequences cut short. */
static void utf8_rejects_invalid_bytes(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("\xFF")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xFE")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xF5\x80\x80\x80")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xF4\x90\x80\x80")), MQTT_ERR_BAD_UTF8); /* U+110000 */
    assert_int_equal(mqtt_utf8_check(S("\x80")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("a\xBF")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xC3")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xE2\x82")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xF0\x9F\x98")), MQTT_ERR_BAD_UTF8);
    assert_int_equal(mqtt_utf8_check(S("\xE2\x28\xA1")), MQTT_ERR_BAD_UTF8);
}

/* The length is honoured: a bad byte past len is not looked at. */
static void utf8_checks_only_len_bytes(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check("ab\xFF", 2), MQTT_ERR_NONE);
    assert_int_equal(mqtt_utf8_check("\xC3\xA9", 1), MQTT_ERR_BAD_UTF8);
}

/* Control characters are allowed but reported (SHOULD NOT, [MQTT-1.5.4-1] note). */
static void utf8_reports_control_characters(void **state)
{
    (void)state;
    assert_int_equal(mqtt_utf8_check(S("a\x01z")), MQTT_ERR_NONE);
    assert_true(mqtt_utf8_has_controls(S("a\x01z")));
    assert_true(mqtt_utf8_has_controls(S("\x7F")));
    assert_true(mqtt_utf8_has_controls(S("\xC2\x80"))); /* U+0080 */
    assert_true(mqtt_utf8_has_controls(S("\xC2\x9F"))); /* U+009F */
    assert_false(mqtt_utf8_has_controls(S("plain/topic")));
    assert_false(mqtt_utf8_has_controls(S("caf\xC3\xA9")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_accepts_well_formed),
        cmocka_unit_test(utf8_accepts_bom),
        cmocka_unit_test(utf8_rejects_nul),
        cmocka_unit_test(utf8_rejects_surrogates),
        cmocka_unit_test(utf8_rejects_overlong),
        cmocka_unit_test(utf8_rejects_invalid_bytes),
        cmocka_unit_test(utf8_checks_only_len_bytes),
        cmocka_unit_test(utf8_reports_control_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
