/*
 * bt_files.c — temporary directories and whole files for the tests that write files (bt_files.h).
 */
#include "support/bt_common.h"
#include "support/bt_files.h"

void bt_make_tmpdir(char *path, size_t cap, const char *prefix)
{
    snprintf(path, cap, "/tmp/%s-XXXXXX", prefix);
    assert_non_null(mkdtemp(path));
}

void bt_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            int length = snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            if (length < 0 || (size_t)length >= sizeof child)
                continue; /* too long to be one of ours */
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                bt_remove_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

unsigned char *bt_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

void bt_write_file(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}
