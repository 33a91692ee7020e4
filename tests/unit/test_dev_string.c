/* SPDX-License-Identifier: MIT */
/* Device strings: unknown type, unknown key or bad value give -EINVAL and a message saying which.
 */
#include "../harness.h"

static void refused(const char *spec, const char *word)
{
        struct ntbt_dev *dev = NULL;

        test_last_log[0] = '\0';
        CHECK_EQ(ntbt_dev_open(spec, &dev), -EINVAL);
        CHECK(dev == NULL);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: log '%s' lacks '%s'\n", spec, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
}

/* kdev: with no bridge behind the name: the error says what the path is. */
static void kdev_refused(const char *spec, int err, const char *word)
{
        struct ntbt_dev *dev = NULL;

        test_last_log[0] = '\0';
        CHECK_EQ(ntbt_dev_open(spec, &dev), err);
        CHECK(dev == NULL);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: log '%s' lacks '%s'\n", spec, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
}

int main(void)
{
        const char *name = test_dev_name("str");
        struct ntbt_dev *dev = NULL;
        char spec[128];

        ntbt_set_log(test_log_hook, NULL);
        ntbt_shm_remove(name);
        CHECK_EQ(ntbt_shm_create(name, NULL), 0);

        refused("nope:x", "unknown device type 'nope'");
        refused("noColon", "TYPE:NAME");
        refused(":x", "TYPE:NAME");
        refused("shm:", "no device name");
        snprintf(spec, sizeof(spec), "shm:%s,bogus=1", name);
        refused(spec, "unknown option 'bogus'");
        snprintf(spec, sizeof(spec), "shm:%s,port=7", name);
        refused(spec, "port=7");
        snprintf(spec, sizeof(spec), "shm:%s,port", name);
        refused(spec, "key=value");
        refused("shm:bad/name", "bad device name");
        /* Another character device, a directory, a file: never opened as a bridge. */
        kdev_refused("kdev:/dev/null", -ENODEV, "not an ntb_user bridge");
        kdev_refused("kdev:/tmp", -ENODEV, "not an ntb_user bridge");
        kdev_refused("kdev:/nonexistent-ntbt-user9", -ENOENT, "No such file");
        kdev_refused("kdev:0000:99:00.0", -ENODEV, "no ntb_user bridge is bound");

        /* The control: a good string opens, on the port it names. */
        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_dev_port(dev), 1);
        CHECK(strcmp(ntbt_dev_type(dev), "shm") == 0);
        ntbt_dev_close(dev);

        /* Bad geometry on create names the field. */
        {
                struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 5000};

                test_last_log[0] = '\0';
                CHECK_EQ(ntbt_shm_create("t-geom-bad", &g), -EINVAL);
                CHECK(strstr(test_last_log, "mw_size") != NULL);
        }
        CHECK_EQ(ntbt_shm_remove(name), 0);
        CHECK_EQ(ntbt_shm_remove(name), -ENOENT);
        printf("device strings: ok\n");
        return 0;
}
