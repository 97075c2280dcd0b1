/*
 * examples/files.c: files without blocking the loop (aiofiles).
 *
 *   async with aiofiles.open("notes.txt", "w") as f: await f.write(text)
 *   async with aiofiles.open("notes.txt") as f:
 *       async for line in f: ...
 *   await asyncio.gather(*(read_file(p) for p in parts))
 *   await aiofiles.os.listdir(d); await aiofiles.os.remove(p)
 *
 * Every call runs on the offload pool and parks only its task, so the three
 * part files are read at the same time, each by its own task. The program
 * works in a fresh directory under /tmp and removes it at the end.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <eddy/eddy.h>

static char dir[] = "/tmp/eddy-files-example-XXXXXX";

static const char *in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

/* Writes the notes atomically: readers see the old file or the new one. */
static int write_notes(void)
{
    const char *text = "apples 3\npears 5\nplums 7";
    char path[128];
    struct eddy_file_write_opts opts = {.atomic = true};
    int rc =
        eddy_file_write_all(in_dir(path, sizeof(path), "notes.txt"), text, strlen(text), &opts);
    if (rc == 0)
        printf("wrote notes.txt (%zu bytes)\n", strlen(text));
    return rc;
}

/* `async for line in f`: the last line has no newline and still comes. */
static int read_notes(void)
{
    char path[128];
    struct eddy_file *f;
    int rc = eddy_file_open(in_dir(path, sizeof(path), "notes.txt"), O_RDONLY, 0, &f);
    if (rc < 0)
        return rc;
    char line[256];
    ssize_t n;
    int number = 0, total = 0;
    while ((n = eddy_file_read_line(f, line, sizeof(line))) > 0) {
        bool newline = line[n - 1] == '\n';
        if (newline)
            line[n - 1] = 0;
        int count = 0;
        sscanf(line, "%*s %d", &count);
        total += count;
        printf("line %d: %s%s\n", ++number, line, newline ? "" : " (no newline)");
    }
    eddy_file_close(f);
    if (n < 0)
        return (int)n;
    printf("total fruit: %d\n", total);
    return 0;
}

struct part {
    int index;
    size_t len;
    int rc;
};

static intptr_t read_part(void *arg)
{
    struct part *p = arg;
    char path[128], name[32];
    snprintf(name, sizeof(name), "part-%d.txt", p->index);
    char *data;
    p->rc = eddy_file_read_all(in_dir(path, sizeof(path), name), 0, &data, &p->len);
    if (p->rc == 0)
        eddy_free(data);
    return 0;
}

/* gather: one task per file, joined in the order they were started. */
static int read_parts(void)
{
    struct part parts[3];
    struct eddy_task *tasks[3];
    for (int i = 0; i < 3; i++) {
        char path[128], name[32], body[400];
        snprintf(name, sizeof(name), "part-%d.txt", i + 1);
        memset(body, 'a' + i, sizeof(body));
        int rc = eddy_file_write_all(in_dir(path, sizeof(path), name), body, (size_t)(i + 1) * 100,
                                     NULL);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < 3; i++) {
        parts[i] = (struct part){.index = i + 1};
        int rc = eddy_task_spawn(read_part, &parts[i], NULL, &tasks[i]);
        if (rc < 0)
            return rc;
    }
    for (int i = 0; i < 3; i++) {
        eddy_task_join(tasks[i], NULL);
        if (parts[i].rc < 0)
            return parts[i].rc;
        printf("read part-%d.txt: %zu bytes\n", parts[i].index, parts[i].len);
    }
    return 0;
}

/* listdir, stat, then remove everything. */
static int list_and_clean(void)
{
    char **names;
    size_t count;
    int rc = eddy_file_readdir(dir, &names, &count);
    if (rc < 0)
        return rc;
    printf("directory:");
    for (size_t i = 0; i < count; i++)
        printf(" %s", names[i]);
    printf("\n");
    char path[128];
    struct eddy_file_stat st;
    rc = eddy_file_stat(in_dir(path, sizeof(path), "notes.txt"), &st);
    if (rc == 0)
        printf("notes.txt: %llu bytes, a %s\n", (unsigned long long)st.size_bytes,
               st.type == EDDY_FILE_TYPE_REGULAR ? "regular file" : "special file");
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = eddy_file_unlink(in_dir(path, sizeof(path), names[i]));
    eddy_free(names);
    if (rc == 0)
        rc = eddy_file_rmdir(dir);
    if (rc == 0)
        printf("removed %zu files and the directory\n", count);
    return rc;
}

static intptr_t main_task(void *arg)
{
    (void)arg;
    int rc = write_notes();
    if (rc == 0)
        rc = read_notes();
    if (rc == 0)
        rc = read_parts();
    if (rc == 0)
        rc = list_and_clean();
    if (rc < 0)
        printf("failed: %s\n", eddy_strerror(rc));
    return rc;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    intptr_t result;
    int rc = eddy_run(main_task, NULL, NULL, &result);
    return rc == 0 && result == 0 ? 0 : 1;
}
