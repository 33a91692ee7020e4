/* SPDX-License-Identifier: MIT */
/* Device strings: unknown type, unknown key or bad value give -EINVAL and a message saying which;
 * ntbt_dev_parse takes a string apart without opening anything, and ntbt_dev_open says the same.
 */
#include "../harness.h"

#include "../support/pair.h"

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

/* A string the parser takes, and what it makes of it. */
static void parsed(const char *spec, unsigned flags, const char *type, const char *base,
                   const char *name, size_t off, int nopts)
{
        struct ntbt_dev_parsed p = {.size = sizeof(p)};
        int ret = ntbt_dev_parse(spec, flags, &p);

        if (ret)
                fprintf(stderr, "%s: %d, log '%s'\n", spec, ret, test_last_log);
        CHECK_EQ(ret, 0);
        CHECK_EQ(p.size, sizeof(p));
        CHECK(strcmp(p.type, type) == 0);
        CHECK(strcmp(p.base_type, base) == 0);
        if (strcmp(p.name, name))
                fprintf(stderr, "%s: name '%s', not '%s'\n", spec, p.name, name);
        CHECK(strcmp(p.name, name) == 0);
        CHECK_EQ(p.name_off, off);
        CHECK(strncmp(spec + p.name_off, name, strlen(name)) == 0);
        CHECK_EQ(p.nopts, nopts);
}

/* A string the parser refuses, with a message naming the fault: and the open says the same. */
static void unparsed(const char *spec, unsigned flags, const char *word)
{
        struct ntbt_dev_parsed p = {.size = sizeof(p)};

        test_last_log[0] = '\0';
        CHECK_EQ(ntbt_dev_parse(spec, flags, &p), -EINVAL);
        if (!strstr(test_last_log, word))
                fprintf(stderr, "%s: log '%s' lacks '%s'\n", spec, test_last_log, word);
        CHECK(strstr(test_last_log, word) != NULL);
        if (!flags)
                refused(spec, word);
}

static void parser(void)
{
        struct ntbt_dev_parsed p = {.size = sizeof(p)};
        char buf[300], name[8];

        /* Good strings: nothing is opened (no device of these names exists). */
        parsed("shm:x", 0, "shm", "shm", "x", 4, 0);
        parsed("shm:x,port=1,nt=0,shared=1", 0, "shm", "shm", "x", 4, 3);
        parsed("shm:x,,port=0,", 0, "shm", "shm", "x", 4, 1);
        parsed("shm:/dev/shm/a:b", 0, "shm", "shm", "/dev/shm/a:b", 4, 0);
        parsed("pcie:x", 0, "pcie", "shm", "x", 5, 0);
        parsed("pcie:x,wc=4,q=1K,bw=2G,lat=10G,rd=0,seed=0x10,port=1,shared=0,nt=1", 0, "pcie",
               "shm", "x", 5, 9);
        parsed("pcie:shm:x,seed=3,port=0", 0, "pcie", "shm", "x", 9, 2); /* the inner type named */
        parsed("pcie:/dev/shm/y", 0, "pcie", "shm", "/dev/shm/y", 5, 0);
        parsed("kdev:/dev/ntbt-user0", 0, "kdev", "kdev", "/dev/ntbt-user0", 5, 0);
        parsed("kdev:0000:99:00.0", 0, "kdev", "kdev", "0000:99:00.0", 5, 0);
        parsed("demo", NTBT_DEV_PARSE_BARE, "shm", "shm", "demo", 0, 0);
        parsed("demo,port=1", NTBT_DEV_PARSE_BARE, "shm", "shm", "demo", 0, 1);
        parsed("/dev/shm/a:b", NTBT_DEV_PARSE_BARE, "shm", "shm", "/dev/shm/a:b", 0, 0);
        parsed("shm:demo", NTBT_DEV_PARSE_BARE, "shm", "shm", "demo", 4, 0);

        /* Bad strings, each refused by the parse and by the open alike. */
        unparsed("nope:x", 0, "unknown device type 'nope'");
        unparsed("nope:x", NTBT_DEV_PARSE_BARE, "unknown device type 'nope'");
        unparsed("pcie:nope:x", 0, "unknown device type 'nope'");
        unparsed("demo", 0, "TYPE:NAME");
        unparsed(":x", 0, "TYPE:NAME");
        unparsed("shm:", 0, "no device name");
        unparsed("shm:,port=1", 0, "no device name");
        unparsed("pcie:", 0, "no device name");
        unparsed("pcie:shm:", 0, "no device name");
        unparsed("kdev:", 0, "no device name");
        unparsed(",port=1", NTBT_DEV_PARSE_BARE, "no device name");
        unparsed("shm:x,bogus=1", 0, "unknown option 'bogus' for device type shm");
        unparsed("kdev:/dev/ntbt-user0,port=1", 0, "unknown option 'port' for device type kdev");
        unparsed("pcie:x,bogus=1", 0, "unknown option 'bogus' for device type pcie");
        unparsed("shm:x,wc=4", 0, "unknown option 'wc'"); /* pcie's key, not shm's */
        unparsed("shm:x,port", 0, "'port' is not key=value");
        unparsed("shm:x,=1", 0, "is not key=value");
        unparsed("shm:x,port=0,port=1", 0, "option 'port' given twice");
        unparsed("pcie:x,wc=2,wc=2", 0, "option 'wc' given twice");
        unparsed("shm:x,port=2", 0, "bad value port=2 (must be 0 or 1)");
        unparsed("shm:x,port=", 0, "bad value port=");
        unparsed("shm:x,nt=yes", 0, "bad value nt=yes");
        unparsed("pcie:x,port=01", 0, "bad value port=01");
        unparsed("pcie:x,wc=0", 0, "bad value wc=0 (a line count, 1-65536)");
        unparsed("pcie:x,q=65537", 0, "bad value q=65537");
        unparsed("pcie:x,lat=11G", 0, "bad value lat=11G (nanoseconds, at most 10 s)");
        unparsed("pcie:x,rd=-1", 0, "bad value rd=-1");
        unparsed("pcie:x,bw=fast", 0, "bad value bw=fast");
        unparsed("pcie:x,seed=1x", 0, "bad value seed=1x");
        /* Nested: one pcie model over another would share one list of options. */
        unparsed("pcie:pcie:x", 0, "a pcie device inside a pcie device");
        unparsed("pcie:pcie:shm:x,wc=2", 0, "a pcie device inside a pcie device");
        /* Too long a string. */
        memset(buf, 'a', sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = '\0';
        memcpy(buf, "shm:", 4);
        unparsed(buf, 0, "device string too long");
        /* The call itself wrong. */
        CHECK_EQ(ntbt_dev_parse(NULL, 0, &p), -EINVAL);
        CHECK_EQ(ntbt_dev_parse("shm:x", 0, NULL), -EINVAL);
        CHECK_EQ(ntbt_dev_parse("shm:x", 0x100, &p), -EINVAL);
        p.size = 4;
        CHECK_EQ(ntbt_dev_parse("shm:x", 0, &p), -EINVAL);

        /* The name, as a device is listed and its statistics files named. */
        CHECK_EQ(ntbt_dev_display_name("shm:demo,port=1", buf, sizeof(buf)), 0);
        CHECK(strcmp(buf, "demo") == 0);
        CHECK_EQ(ntbt_dev_display_name("pcie:shm:demo,wc=2", buf, sizeof(buf)), 0);
        CHECK(strcmp(buf, "demo") == 0);
        CHECK_EQ(ntbt_dev_display_name("pcie:demo", buf, sizeof(buf)), 0);
        CHECK(strcmp(buf, "demo") == 0);
        CHECK_EQ(ntbt_dev_display_name("demo", buf, sizeof(buf)), 0);
        CHECK(strcmp(buf, "demo") == 0);
        CHECK_EQ(ntbt_dev_display_name("kdev:/dev/ntbt-user0", buf, sizeof(buf)), 0);
        CHECK(strcmp(buf, "/dev/ntbt-user0") == 0);
        CHECK_EQ(ntbt_dev_display_name("shm:demo", name, 5), 0);
        CHECK_EQ(ntbt_dev_display_name("shm:demo", name, 4), -ENAMETOOLONG);
        CHECK_EQ(ntbt_dev_display_name("nope:demo", buf, sizeof(buf)), -EINVAL);
        CHECK_EQ(ntbt_dev_display_name("shm:demo,port=3", buf, sizeof(buf)), -EINVAL);

        /* name_off puts another name in place, the rest kept (a private loopback device). */
        {
                const char *spec = "pcie:shm:demo,wc=4,port=1";

                p.size = sizeof(p);
                CHECK_EQ(ntbt_dev_parse(spec, 0, &p), 0);
                snprintf(buf, sizeof(buf), "%.*s%s%s", (int)p.name_off, spec, "demo-loop-7",
                         spec + p.name_off + strlen(p.name));
                CHECK(strcmp(buf, "pcie:shm:demo-loop-7,wc=4,port=1") == 0);
        }
}

static struct pair pr;
static const char *name;

static void fixture_up(void)
{
        pair_create(&pr, "str", NULL);
        name = pr.name;
}

static void fixture_down(void)
{
        pair_destroy(&pr);
        CHECK_EQ(ntbt_shm_remove(name), -ENOENT);
}

/* ntbt_dev_parse splits a string into its parts, or names what is wrong. */
static void parses(void)
{
        fixture_up();
        parser();
        fixture_down();
}

/* A bad string is refused, naming the fault; so is a kdev: path that is
 * not an ntb_user bridge. */
static void bad_strings_refused(void)
{
        char spec[128];

        fixture_up();
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
        fixture_down();
}

/* Good strings open, on the port they name; pcie: wraps the shm device. */
static void good_strings_open(void)
{
        struct ntbt_dev *dev = NULL;
        char spec[128];

        fixture_up();
        /* The control: a good string opens, on the port it names. */
        snprintf(spec, sizeof(spec), "shm:%s,port=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_dev_port(dev), 1);
        CHECK(strcmp(ntbt_dev_type(dev), "shm") == 0);
        ntbt_dev_close(dev);
        /* A pcie: model over the shm device, its type named or not; its
         * port= goes to the shm device inside. */
        snprintf(spec, sizeof(spec), "pcie:shm:%s,port=1,wc=2", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_dev_port(dev), 1);
        CHECK(strcmp(ntbt_dev_type(dev), "pcie") == 0);
        CHECK(strcmp(ntbt_dev_spec(dev), spec) == 0);
        ntbt_dev_close(dev);
        snprintf(spec, sizeof(spec), "pcie:%s,port=0,nt=1", name);
        CHECK_EQ(ntbt_dev_open(spec, &dev), 0);
        CHECK_EQ(ntbt_dev_port(dev), 0);
        ntbt_dev_close(dev);
        fixture_down();
}

/* A bad geometry on create names the field. */
static void bad_geometry_named(void)
{
        fixture_up();
        {
                struct ntbt_shm_geom g = {.size = sizeof(g), .mw_size = 5000};

                test_last_log[0] = '\0';
                CHECK_EQ(ntbt_shm_create("t-geom-bad", &g), -EINVAL);
                CHECK(strstr(test_last_log, "mw_size") != NULL);
        }
        fixture_down();
}

static const struct test_case cases[] = {
    TEST_CASE(parses),
    TEST_CASE(bad_strings_refused),
    TEST_CASE(good_strings_open),
    TEST_CASE(bad_geometry_named),
};

int main(int argc, char **argv)
{
        return test_main(argc, argv, TEST_CASES(cases));
}
