/* Tests of broker/json.c: the escaping writer and the strict flat-object reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "textbuf.h"

/* Objects and arrays nest with commas and colons in the right places. */
static void writer_nesting(void **state)
{
    struct textbuf tb;
    struct json_writer w;
    (void)state;
    textbuf_init(&tb, 0);
    json_writer_init(&w, &tb);
    json_begin_object(&w);
    json_key(&w, "node_id");
    json_uint(&w, 3);
    json_key(&w, "leader");
    json_null(&w);
    json_key(&w, "delta");
    json_int(&w, -5);
    json_key(&w, "members");
    json_begin_array(&w);
    json_begin_object(&w);
    json_key(&w, "id");
    json_uint(&w, 18446744073709551615u);
    json_key(&w, "alive");
    json_bool(&w, true);
    json_end_object(&w);
    json_begin_object(&w);
    json_end_object(&w);
    json_string(&w, "x");
    json_begin_array(&w);
    json_end_array(&w);
    json_end_array(&w);
    json_end_object(&w);
    assert_int_equal(textbuf_error(&tb), 0);
    assert_string_equal(tb.data, "{\"node_id\":3,\"leader\":null,\"delta\":-5,\"members\":[{\"id\":"
                                 "18446744073709551615,\"alive\":true},{},\"x\",[]]}");
    textbuf_free(&tb);
}

/* Quotes, backslashes and control characters are escaped; valid UTF-8 passes unchanged;
 * bytes that are not UTF-8 (overlong forms, surrogates, truncated sequences) become U+FFFD. */
static void writer_escapes(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\r\t\x01\x1f", 5, "\"\\n\\r\\t\\u0001\\u001f\""},
        {"nul\0x", 5, "\"nul\\u0000x\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},            /* overlong '/' */
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""}, /* a surrogate */
        {"a\xe2\x82", 3, "\"a\\ufffd\\ufffd\""},          /* truncated */
        {"\xff", 1, "\"\\ufffd\""},
        {"\x7f/", 2, "\"\x7f/\""},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct textbuf tb;
        textbuf_init(&tb, 0);
        json_escape(&tb, cases[i].in, cases[i].len);
        if (strcmp(tb.data, cases[i].out) != 0)
            fail_msg("case %zu: got %s, expected %s", i, tb.data, cases[i].out);
        textbuf_free(&tb);
    }
}

/* The buffer limit stops the writer with -E2BIG. */
static void writer_limit(void **state)
{
    struct textbuf tb;
    struct json_writer w;
    (void)state;
    textbuf_init(&tb, 8);
    json_writer_init(&w, &tb);
    json_begin_array(&w);
    json_string(&w, "0123456789");
    assert_int_equal(textbuf_error(&tb), -E2BIG);
    textbuf_free(&tb);
}

static struct json_field id_fields[2];
static char address[32];

static int read_body(const char *text, char *err, size_t errlen)
{
    memset(id_fields, 0, sizeof id_fields);
    id_fields[0] = (struct json_field){.name = "id", .type = JSON_FIELD_UINT};
    id_fields[1] = (struct json_field){
        .name = "address", .type = JSON_FIELD_STRING, .str = address, .str_cap = sizeof address};
    return json_read_object(text, strlen(text), id_fields, 2, err, errlen);
}

/* Well-formed bodies: fields in any order, white space, escapes, an empty object. */
static void reader_accepts(void **state)
{
    char err[128];
    (void)state;
    assert_int_equal(read_body(" {\"id\": 4, \"address\":\"10.0.0.4:7700\"}\r\n", err, sizeof err),
                     0);
    assert_true(id_fields[0].present);
    assert_int_equal(id_fields[0].u, 4);
    assert_true(id_fields[1].present);
    assert_string_equal(address, "10.0.0.4:7700");
    assert_int_equal(id_fields[1].str_len, 13);

    assert_int_equal(
        read_body("{\"address\":\"a\\u00e9\\ud83d\\ude00\\n\\/\",\"id\":0}", err, sizeof err), 0);
    assert_string_equal(address, "a\xc3\xa9\xf0\x9f\x98\x80\n/");
    assert_int_equal(id_fields[0].u, 0);

    assert_int_equal(read_body("{}", err, sizeof err), 0);
    assert_false(id_fields[0].present);
    assert_false(id_fields[1].present);

    assert_int_equal(read_body("{\"id\":18446744073709551615}", err, sizeof err), 0);
    assert_int_equal(id_fields[0].u, UINT64_MAX);
}

/* Everything else is refused with a message that says what is wrong. */
static void reader_refuses(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"", "expected a JSON object"},
        {"[1]", "expected a JSON object"},
        {"{", "invalid JSON: unexpected end"},
        {"{\"id\":1", "invalid JSON: unexpected end"},
        {"{\"id\":1,}", "invalid JSON at byte 8"},
        {"{\"id\" 1}", "invalid JSON at byte 6"},
        {"{id:1}", "invalid JSON at byte 1"},
        {"{\"id\":1} x", "trailing data after the JSON object"},
        {"{\"id\":1}{}", "trailing data after the JSON object"},
        {"{\"idx\":1}", "unknown field \"idx\""},
        {"{\"id\":1,\"id\":2}", "field \"id\" given twice"},
        {"{\"id\":-1}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":1.5}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":1e3}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":01}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":\"1\"}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":null}", "field \"id\": expected a non-negative integer"},
        {"{\"id\":18446744073709551616}", "field \"id\": integer out of range"},
        {"{\"address\":1}", "field \"address\": expected a string"},
        {"{\"address\":{}}", "field \"address\": expected a string"},
        {"{\"address\":\"0123456789012345678901234567890123\"}", "address: too long"},
        {"{\"address\":\"\\u0000\"}", "address: NUL character"},
        {"{\"address\":\"\\ud800\"}", "address: invalid \\u escape"},
        {"{\"address\":\"\\udc00\"}", "address: invalid \\u escape"},
        {"{\"address\":\"\\x\"}", "invalid JSON at byte 13"},
        {"{\"address\":\"\xc3\"}", "address: invalid UTF-8"},
        {"{\"address\":\"a\nb\"}", "invalid JSON at byte 13"},
    };
    char err[128];
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = read_body(cases[i].text, err, sizeof err);
        if (rc != -EINVAL || strcmp(err, cases[i].msg) != 0)
            fail_msg("case %zu (%s): rc %d '%s', expected '%s'", i, cases[i].text, rc, err,
                     cases[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writer_nesting), cmocka_unit_test(writer_escapes),
        cmocka_unit_test(writer_limit),   cmocka_unit_test(reader_accepts),
        cmocka_unit_test(reader_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
