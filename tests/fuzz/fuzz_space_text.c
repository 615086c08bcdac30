/*
 * fuzz_space_text.c — the space's untrusted-input readers against their own round trips. Each
 * input is tried three ways:
 *   - as an encoding: baton_value_decode either refuses it or returns a value whose encoding is
 *     the input itself (a decoder that accepted a non-canonical form would return other bytes),
 *     and whose text parses back to the same value;
 *   - as value text: baton_value_parse either refuses it or returns a value whose canonical text
 *     parses back to the same encoding and prints the same text again;
 *   - as pattern text: baton_pattern_parse either refuses it or returns a pattern whose canonical
 *     text parses to a pattern that prints the same; the pattern is matched against every value
 *     the input made, and a match must bind views that lie inside that value.
 * Any crash, sanitizer report or broken round trip is a finding.
 *
 * Built two ways, like fuzz_deque.c: as a libFuzzer target with -DBATON_FUZZ=ON and clang
 * (`make fuzz` runs it), and, always, as a CTest program whose main replays the saved corpus
 * (BATON_FUZZ_CORPUS_DIR) and then feeds it inputs made by mutating a fixed set of valid texts
 * and encodings with a fixed-seed generator (BATON_FUZZ_DRIVER).
 */
#if defined(BATON_FUZZ_DRIVER) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* opendir, for the corpus */
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baton/space.h"

#define FUZZ_TEXT_MAX 65536

static void fuzz_fail(const char *what, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_space_text: %s (input of %zu bytes: %.*s)\n", what, size,
            (int)(size < 200 ? size : 200), (const char *)data);
    abort();
}

/* The canonical text of view into a fresh heap string, or NULL when it would not fit. */
static char *print_value(baton_value_view view)
{
    static char buf[FUZZ_TEXT_MAX];
    size_t length = 0;
    if (baton_value_print(view, buf, sizeof buf, &length) != 0)
        return NULL;
    char *copy = malloc(length + 1);
    if (copy != NULL)
        memcpy(copy, buf, length + 1);
    return copy;
}

/* The value's text must parse back to the same encoding and print the same again. */
static void check_value_text(const baton_value *value, const uint8_t *data, size_t size)
{
    char *text = print_value(baton_value_as_view(value));
    if (text == NULL)
        return; /* too long for the buffer: nothing to compare */
    baton_value *again = NULL;
    if (baton_value_parse(text, strlen(text), &again) != 0)
        fuzz_fail("a printed value does not parse", data, size);
    if (!baton_view_equal(baton_value_as_view(value), baton_value_as_view(again)))
        fuzz_fail("a printed value parses to another value", data, size);
    char *text_again = print_value(baton_value_as_view(again));
    if (text_again == NULL || strcmp(text, text_again) != 0)
        fuzz_fail("printing is not stable", data, size);
    free(text_again);
    free(text);
    baton_value_destroy(again);
}

static void check_match(const baton_pattern *pattern, const baton_value *value,
                        const uint8_t *data, size_t size)
{
    baton_value_view bindings[BATON_PATTERN_MAX_BINDERS];
    baton_value_view whole = baton_value_as_view(value);
    if (!baton_pattern_match(pattern, whole, bindings))
        return;
    for (unsigned i = 0; i < baton_pattern_binders(pattern); i++) {
        if (bindings[i].data < whole.data ||
            bindings[i].data + bindings[i].size > whole.data + whole.size)
            fuzz_fail("a binding lies outside the matched value", data, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    baton_value *decoded = NULL;
    if (baton_value_decode(data, size, &decoded) == 0) {
        baton_value_view view = baton_value_as_view(decoded);
        if (view.size != size || memcmp(view.data, data, size) != 0)
            fuzz_fail("a decoded value's encoding differs from the input", data, size);
        check_value_text(decoded, data, size);
    }

    baton_value *parsed = NULL;
    if (baton_value_parse((const char *)data, size, &parsed) == 0)
        check_value_text(parsed, data, size);

    baton_pattern *pattern = NULL;
    if (baton_pattern_parse((const char *)data, size, &pattern) == 0) {
        static char buf[FUZZ_TEXT_MAX], buf_again[FUZZ_TEXT_MAX];
        size_t length = 0, length_again = 0;
        if (baton_pattern_print(pattern, buf, sizeof buf, &length) == 0) {
            baton_pattern *again = NULL;
            if (baton_pattern_parse(buf, length, &again) != 0)
                fuzz_fail("a printed pattern does not parse", data, size);
            if (baton_pattern_print(again, buf_again, sizeof buf_again, &length_again) != 0 ||
                length != length_again || memcmp(buf, buf_again, length) != 0)
                fuzz_fail("printing a pattern is not stable", data, size);
            baton_pattern_destroy(again);
        }
        if (decoded != NULL)
            check_match(pattern, decoded, data, size);
        if (parsed != NULL)
            check_match(pattern, parsed, data, size);
        baton_pattern_destroy(pattern);
    }
    baton_value_destroy(decoded);
    baton_value_destroy(parsed);
    return 0;
}

#ifdef BATON_FUZZ_DRIVER
#include "support/bt_fuzz.h"

static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The CTest driver: the saved corpus, then valid texts and encodings, each mutated by a few random byte changes,
 * insertions and deletions, so that most inputs get deep into the parsers before they fail. */
int main(int argc, char **argv)
{
    static const char *const seeds[] = {
        "(\"hello\", 42, [1, 2])", "nil", "true", "false", "-9223372036854775808",
        "\"a \\\"q\\\" \\x41\\n\"", "x\"00ff10\"", "@17", "()", "(1,)", "[]",
        "[(1, [2, (3,)]), \"s\", x\"\", @0]", "\"hello\" | \"world\"", "(x, _, [1, y])",
        "Int | String", "(Tuple, List, Bool, Bytes, Nil, Name)", "[a, (b, c), _]",
    };
    static const uint8_t encodings[][12] = {
        {0x03, 0, 0, 0, 0, 0, 0, 0, 1}, {0x04, 0x02, 'h', 'i'}, {0x06, 0x01, 0x00},
        {0x07, 0x02, 0x01, 0x02}, {0x08, 0, 0, 0, 0, 0, 0, 0, 7}, {0x05, 0x00},
    };
    unsigned long replayed =
        bt_fuzz_replay_corpus("fuzz_space_text", BATON_FUZZ_CORPUS_DIR, LLVMFuzzerTestOneInput);
    unsigned long inputs = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
    uint64_t x = 0x9e3779b97f4a7c15u;
    static uint8_t buf[512];
    size_t n_seeds = sizeof seeds / sizeof seeds[0];
    size_t n_encodings = sizeof encodings / sizeof encodings[0];
    for (unsigned long n = 0; n < inputs; n++) {
        size_t len;
        size_t pick = (size_t)(next_random(&x) % (n_seeds + n_encodings));
        if (pick < n_seeds) {
            len = strlen(seeds[pick]);
            memcpy(buf, seeds[pick], len);
        } else {
            len = sizeof encodings[0];
            memcpy(buf, encodings[pick - n_seeds], len);
            while (len > 1 && buf[len - 1] == 0 && encodings[pick - n_seeds][0] != 0x03 &&
                   encodings[pick - n_seeds][0] != 0x08)
                len--;
        }
        unsigned mutations = (unsigned)(next_random(&x) % 4);
        for (unsigned m = 0; m < mutations && len > 0; m++) {
            size_t at = (size_t)(next_random(&x) % len);
            switch (next_random(&x) % 3) {
            case 0:
                buf[at] = (uint8_t)next_random(&x);
                break;
            case 1:
                if (len < sizeof buf) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = (uint8_t)"()[],|\"\\_x@-0"[next_random(&x) % 13];
                    len++;
                }
                break;
            default:
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_space_text: %lu corpus files and %lu inputs passed\n", replayed, inputs);
    return 0;
}
#endif
