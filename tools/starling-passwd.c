/* starling-passwd: manages password files with mosquitto_passwd's command line and output
 * format ("user:$7$101$<salt>$<hash>" by default, "user:$6$<salt>$<hash>" with -H sha512),
 * so the files work with both Starling and Mosquitto.
 *
 * The hash is written here with wolfCrypt directly (tools use no private broker header); the
 * broker's reader (broker/auth.c) is tested against this program's output. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha512.h>

#define SALT_LEN       12
#define HASH_LEN       64
#define ITERATIONS     101
#define PASSWORD_MAX   65535
#define HASH_FIELD_MAX 256

enum hash_kind { HASH_SHA512 = 6, HASH_SHA512_PBKDF2 = 7 };

static void usage(void)
{
    printf("starling-passwd is a tool for managing password files for starling and mosquitto.\n"
           "\n"
           "Usage: starling-passwd [-H sha512 | -H sha512-pbkdf2] [-c | -D] passwordfile "
           "username\n"
           "       starling-passwd [-H sha512 | -H sha512-pbkdf2] [-c] -b passwordfile username "
           "password\n"
           "       starling-passwd -U passwordfile\n"
           " -b : run in batch mode to allow passing passwords on the command line.\n"
           " -c : create a new password file. This will overwrite existing files.\n"
           " -D : delete the username rather than adding/updating its password.\n"
           " -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is "
           "recommended.\n"
           "      Mosquitto 1.6 and earlier defaulted to sha512.\n"
           " -U : update a plain text password file to use hashed passwords.\n");
}

/* Writes "$7$101$salt$hash" or "$6$salt$hash" for password into out. Returns 0 or -1. */
static int hash_password(enum hash_kind kind, const char *password, char *out, size_t outlen)
{
    uint8_t salt[SALT_LEN], digest[HASH_LEN];
    byte salt_b64[32], hash_b64[128];
    word32 sl = sizeof salt_b64, hl = sizeof hash_b64;
    WC_RNG rng;
    int rc = -1;
    size_t pwlen = strlen(password);
    if (wc_InitRng(&rng) != 0) return -1;
    if (wc_RNG_GenerateBlock(&rng, salt, sizeof salt) != 0) goto out;
    if (kind == HASH_SHA512_PBKDF2) {
        if (wc_PBKDF2(digest, (const byte *)password, (int)pwlen, salt, SALT_LEN, ITERATIONS,
                      HASH_LEN, WC_SHA512) != 0)
            goto out;
    } else {
        wc_Sha512 sha;
        if (wc_InitSha512(&sha) != 0) goto out;
        int ok = wc_Sha512Update(&sha, (const byte *)password, (word32)pwlen) == 0 &&
                 wc_Sha512Update(&sha, salt, SALT_LEN) == 0 && wc_Sha512Final(&sha, digest) == 0;
        wc_Sha512Free(&sha);
        if (!ok) goto out;
    }
    if (Base64_Encode_NoNl(salt, SALT_LEN, salt_b64, &sl) != 0 ||
        Base64_Encode_NoNl(digest, HASH_LEN, hash_b64, &hl) != 0)
        goto out;
    int n;
    if (kind == HASH_SHA512_PBKDF2)
        n = snprintf(out, outlen, "$7$%d$%.*s$%.*s", ITERATIONS, (int)sl, (const char *)salt_b64,
                     (int)hl, (const char *)hash_b64);
    else
        n = snprintf(out, outlen, "$6$%.*s$%.*s", (int)sl, (const char *)salt_b64, (int)hl,
                     (const char *)hash_b64);
    rc = n > 0 && (size_t)n < outlen ? 0 : -1;
out:
    wc_FreeRng(&rng);
    return rc;
}

/* Reads one line from stdin without echo when it is a terminal. Returns 0 or -1 (EOF). */
static int read_password(const char *prompt, char *buf, size_t len)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    printf("%s", prompt);
    fflush(stdout);
    if (tty) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    char *r = fgets(buf, (int)len, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        printf("\n");
    }
    if (r == NULL) return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* The lines of a file, each without its newline. */
struct lines {
    char **v;
    size_t n;
};

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int lines_push(struct lines *l, const char *s)
{
    char **g = realloc(l->v, (l->n + 1) * sizeof *g);
    if (g == NULL) return -1;
    l->v = g;
    if ((l->v[l->n] = strdup(s)) == NULL) return -1;
    l->n++;
    return 0;
}

static int lines_read(const char *path, struct lines *out)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    if (f == NULL) {
        fprintf(stderr, "Error: Unable to open password file %s. %s.\n", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (lines_push(out, line) != 0) {
            fprintf(stderr, "Error: Out of memory.\n");
            free(line);
            fclose(f);
            return -1;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* Writes the lines to path through a temporary file and rename(), keeping the mode of an
 * existing file; a new one gets 0666 less the umask, as mosquitto_passwd's fopen() does (the
 * broker may run as another user that must read it). */
static int lines_write(const char *path, const struct lines *l)
{
    size_t plen = strlen(path) + 16;
    char *tmp = malloc(plen);
    struct stat st;
    mode_t mask = umask(0);
    umask(mask);
    mode_t mode = stat(path, &st) == 0 ? (st.st_mode & 07777) : (0666 & ~mask);
    if (tmp == NULL) return -1;
    snprintf(tmp, plen, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "Error: Unable to write password file %s. %s.\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    fchmod(fd, mode);
    FILE *f = fdopen(fd, "w");
    int rc = f != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        if (fprintf(f, "%s\n", l->v[i]) < 0) rc = -1;
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    else if (f == NULL)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    if (rc != 0) {
        fprintf(stderr, "Error: Unable to write password file %s. %s.\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* Whether line is "username:..." for this username (blanks around the name ignored, as the
 * broker's reader does). */
static bool line_is_user(const char *line, const char *username)
{
    const char *colon = strchr(line, ':');
    if (line[0] == '#' || colon == NULL) return false;
    const char *s = line, *e = colon;
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    return (size_t)(e - s) == strlen(username) && memcmp(s, username, (size_t)(e - s)) == 0;
}

static int make_line(enum hash_kind kind, const char *username, const char *password, char **out)
{
    char hash[HASH_FIELD_MAX];
    if (hash_password(kind, password, hash, sizeof hash) != 0) {
        fprintf(stderr, "Error: Unable to hash password.\n");
        return -1;
    }
    size_t n = strlen(username) + 1 + strlen(hash) + 1;
    if ((*out = malloc(n)) == NULL) return -1;
    snprintf(*out, n, "%s:%s", username, hash);
    return 0;
}

/* -U: hashes every plain-text password; lines already in $6$/$7$ form are kept as they are. */
static int update_file(const char *path, enum hash_kind kind)
{
    struct lines l = {0};
    int rc = lines_read(path, &l);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        char *line = l.v[i];
        char *colon = strchr(line, ':');
        if (line[0] == '#' || colon == NULL || colon == line) continue;
        const char *pw = colon + 1;
        if (strncmp(pw, "$6$", 3) == 0 || strncmp(pw, "$7$", 3) == 0) continue;
        *colon = '\0';
        char *repl;
        rc = make_line(kind, line, pw, &repl);
        if (rc == 0) {
            free(l.v[i]);
            l.v[i] = repl;
        }
    }
    if (rc == 0) rc = lines_write(path, &l);
    lines_free(&l);
    return rc == 0 ? 0 : 1;
}

static int delete_user(const char *path, const char *username)
{
    struct lines l = {0};
    size_t kept = 0;
    bool found = false;
    if (lines_read(path, &l) != 0) return 1;
    for (size_t i = 0; i < l.n; i++) {
        if (line_is_user(l.v[i], username)) {
            found = true;
            free(l.v[i]);
        } else {
            l.v[kept++] = l.v[i];
        }
    }
    l.n = kept;
    int rc = 0;
    if (!found) {
        fprintf(stderr, "Warning: User %s not found in password file.\n", username);
        rc = 1;
    } else if (lines_write(path, &l) != 0) {
        rc = 1;
    }
    lines_free(&l);
    return rc;
}

static int set_user(const char *path, bool create, enum hash_kind kind, const char *username,
                    const char *password)
{
    struct lines l = {0};
    char *line = NULL;
    int rc = 1;
    if (!create && lines_read(path, &l) != 0) return 1;
    if (make_line(kind, username, password, &line) != 0) goto out;
    bool replaced = false;
    size_t kept = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (line_is_user(l.v[i], username)) {
            free(l.v[i]);
            if (replaced) continue; /* drop later duplicates */
            l.v[kept++] = line;
            line = NULL;
            replaced = true;
        } else {
            l.v[kept++] = l.v[i];
        }
    }
    l.n = kept;
    if (!replaced) {
        if (lines_push(&l, line) != 0) goto out;
    }
    rc = lines_write(path, &l) == 0 ? 0 : 1;
out:
    free(line);
    lines_free(&l);
    return rc;
}

int main(int argc, char *argv[])
{
    bool create = false, del = false, batch = false, update = false;
    enum hash_kind kind = HASH_SHA512_PBKDF2;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-c") == 0) {
            create = true;
        } else if (strcmp(argv[i], "-D") == 0) {
            del = true;
        } else if (strcmp(argv[i], "-b") == 0) {
            batch = true;
        } else if (strcmp(argv[i], "-U") == 0) {
            update = true;
        } else if (strcmp(argv[i], "-H") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "Error: -H argument given but not enough other arguments.\n");
                return 1;
            }
            i++;
            if (strcmp(argv[i], "sha512") == 0) {
                kind = HASH_SHA512;
            } else if (strcmp(argv[i], "sha512-pbkdf2") == 0) {
                kind = HASH_SHA512_PBKDF2;
            } else {
                fprintf(stderr, "Error: Unknown hash type '%s'\n", argv[i]);
                return 1;
            }
        } else {
            usage();
            return 1;
        }
    }
    int rest = argc - i;
    char **pos = argv + i;
    if (create && del) {
        fprintf(stderr, "Error: -c and -D cannot be used together.\n");
        return 1;
    }
    if (update) {
        if (create || del || batch || rest != 1) {
            if (rest < 1)
                fprintf(stderr, "Error: -U argument given but password file missing.\n");
            else
                usage();
            return 1;
        }
        return update_file(pos[0], kind);
    }
    if (rest != (batch ? 3 : 2) || (batch && del)) {
        usage();
        return 1;
    }
    const char *path = pos[0], *username = pos[1];
    if (strchr(username, ':') != NULL) {
        fprintf(stderr, "Error: Username must not contain the ':' character.\n");
        return 1;
    }
    if (username[0] == '\0') {
        fprintf(stderr, "Error: Empty username.\n");
        return 1;
    }
    if (del) return delete_user(path, username);

    char pw1[PASSWORD_MAX + 2], pw2[PASSWORD_MAX + 2];
    const char *password;
    if (batch) {
        password = pos[2];
    } else {
        if (read_password("Password: ", pw1, sizeof pw1) != 0 ||
            read_password("Reenter password: ", pw2, sizeof pw2) != 0) {
            fprintf(stderr, "Error: Empty password.\n");
            return 1;
        }
        if (strcmp(pw1, pw2) != 0) {
            fprintf(stderr, "Error: Passwords do not match.\n");
            return 2;
        }
        password = pw1;
    }
    if (password[0] == '\0') {
        fprintf(stderr, "Error: Empty password.\n");
        return 1;
    }
    if (strlen(password) > PASSWORD_MAX) {
        fprintf(stderr, "Error: Password too long.\n");
        return 1;
    }
    return set_user(path, create, kind, username, password);
}
