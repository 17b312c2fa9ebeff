/* replay_main.c: runs a fuzz target's LLVMFuzzerTestOneInput over a corpus
 * without libFuzzer, so the normal (gcc, sanitizer) build checks the corpus.
 *
 * Usage: fuzz_NAME_replay DIR_OR_FILE...
 * Every regular file of each directory (sorted by name, not recursive) and
 * every file named is run once. Exits 0 when all ran, 1 when a directory
 * is missing or holds no file, 2 on bad usage. A crash is a crash. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file. The input lives in a buffer of exactly its size, as
 * libFuzzer gives it, so that sanitizers see any read past its end. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		fclose(f);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	size_t n = size ? fread(buf, 1, size, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (bad || n != size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of `dir`. Returns the number run, or -1. */
static long replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t count = 0, cap = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		names[count] = strdup(e->d_name);
		if (names[count])
			count++;
	}
	closedir(d);
	qsort(names, count, sizeof(*names), name_cmp);
	long run = 0;
	int failed = 0;
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(dir) + strlen(names[i]) + 2;
		char *path = malloc(len);
		struct stat st;
		if (path) {
			snprintf(path, len, "%s/%s", dir, names[i]);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (replay_file(path) == 0)
					run++;
				else
					failed = 1;
			}
			free(path);
		}
		free(names[i]);
	}
	free(names);
	return failed ? -1 : run;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 2;
	}
	long total = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			long n = replay_dir(argv[i]);
			if (n < 0)
				return 1;
			if (n == 0) {
				fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
				return 1;
			}
			total += n;
		} else {
			if (replay_file(argv[i]) < 0)
				return 1;
			total++;
		}
	}
	printf("replay: %ld inputs ran\n", total);
	return 0;
}
