/* SPDX-License-Identifier: MIT */
/* ntbt perf's output: the banner, interval lines, the table and JSON. */
#include <stdio.h>

#include <ntbt/ntbt.h>

#include "perf.h"

/* On stdout, or on stderr when stdout carries JSON. */
void interval_line(FILE *f, double from, double to, uint64_t bytes, uint64_t msgs,
                   uint64_t rx_bytes, int bidir)
{
        double d = to - from;

        fprintf(f, "[%6.1f-%6.1f s] %10.3f GB  %8.3f GB/s  %8.3f Gbit/s  %8.3f M msg/s", from, to,
                (double)bytes / 1e9, (double)bytes / d / 1e9, (double)bytes * 8 / d / 1e9,
                (double)msgs / d / 1e6);
        if (bidir)
                fprintf(f, "  back %8.3f GB/s", (double)rx_bytes / d / 1e9);
        fprintf(f, "\n");
        fflush(f);
}

/*
 * The table's title (once), and with interval lines the size about to run:
 * printed once the client has its device, so that a bad device string is
 * one line on stderr and nothing on stdout.
 */
void print_banner(const struct perf_opts *o, uint32_t size)
{
        static int done;

        if (o->output)
                return;
        if (!done) {
                printf("ntbt perf: %s, %d queue pair%s%s, %s copy, %.1f s per size%s%s\n",
                       o->user_dev, o->qps, o->qps == 1 ? "" : "s", o->bidir ? " both ways" : "",
                       o->zc ? "zero" : cli_tx_mode_name(o->c.tx_mode), o->seconds,
                       o->verify ? ", verified" : "", o->c.loopback ? ", loopback" : "");
                if (!o->interval)
                        print_header(o);
                done = 1;
        }
        if (o->interval) {
                if (size)
                        printf("-- %u-byte messages\n", size);
                else
                        printf("-- messages of the max payload\n");
        }
        fflush(stdout);
}
void print_header(const struct perf_opts *o)
{
        printf("%9s %11s %9s %9s %9s %8s %7s %7s %7s%s\n", "size", "msgs", "GB/s", "Gbit/s",
               "M msg/s", "enq ns", "cpu tx", "cpu rx", "errors", o->bidir ? "  back GB/s" : "");
}

void print_row(const struct perf_opts *o, const struct perf_result *res)
{
        double bps = res->seconds > 0 ? (double)res->msgs * res->size / res->seconds : 0;
        char srv[16];

        if (res->cpu_server >= 0)
                snprintf(srv, sizeof(srv), "%6.0f%%", res->cpu_server);
        else
                snprintf(srv, sizeof(srv), "%7s", "-");
        printf("%9u %11llu %9.3f %9.3f %9.3f %8.0f %6.0f%% %7s %7llu", res->size,
               (unsigned long long)res->msgs, bps / 1e9, bps * 8 / 1e9,
               res->seconds > 0 ? (double)res->msgs / res->seconds / 1e6 : 0.0,
               res->enq_samples ? (double)res->enq_ns_sum / (double)res->enq_samples : 0.0,
               res->cpu_client, srv, (unsigned long long)result_errors(res));
        if (o->bidir)
                printf("  %9.3f",
                       res->seconds > 0 ? (double)res->rx_bytes / res->seconds / 1e9 : 0);
        printf("%s\n", res->failed ? "  FAILED" : "");
}

/* The fields of one size's result, without the braces. */
static void print_json_fields(const struct perf_opts *o, const struct perf_result *res)
{
        double s = res->seconds > 0 ? res->seconds : 1;
        double bps = (double)res->msgs * res->size / s;

        printf("\"size\":%u,\"qps\":%d,\"rx_threads\":%d,\"bidir\":%s,\"tx_mode\":\"%s\",\"zc\":%s,"
               "\"msgs\":%llu,"
               "\"bytes\":%llu,\"seconds\":%.6f,\"bytes_per_sec\":%.0f,\"gbit_per_sec\":%.4f,"
               "\"msgs_per_sec\":%.0f,\"enqueue_ns_avg\":%.1f,\"cpu_client_pct\":%.1f,"
               "\"cpu_server_pct\":%.1f,\"rx_msgs\":%llu,\"rx_bytes_per_sec\":%.0f,"
               "\"work_ns_per_kib\":%llu,\"errors\":%llu,\"tx_errors\":%llu,"
               "\"verify_errors\":%llu,\"rx_err_ver\":%llu,\"rx_err_oflow\":%llu,"
               "\"rx_err_flags\":%llu,\"tx_err_rri\":%llu,\"resets\":%llu,\"failed\":%s",
               res->size, o->qps, res->rx_threads, o->bidir ? "true" : "false",
               cli_tx_mode_name(res->tx_mode), o->zc ? "true" : "false",
               (unsigned long long)res->msgs, (unsigned long long)(res->msgs * res->size),
               res->seconds, bps, bps * 8 / 1e9, (double)res->msgs / s,
               res->enq_samples ? (double)res->enq_ns_sum / (double)res->enq_samples : 0.0,
               res->cpu_client, res->cpu_server, (unsigned long long)res->rx_msgs,
               (double)res->rx_bytes / s, (unsigned long long)o->work_ns,
               (unsigned long long)result_errors(res), (unsigned long long)res->tx_errors,
               (unsigned long long)res->verify_errors, (unsigned long long)res->rx_err_ver,
               (unsigned long long)res->rx_err_oflow, (unsigned long long)res->rx_err_flags,
               (unsigned long long)res->tx_err_rri, (unsigned long long)res->resets,
               res->failed ? "true" : "false");
}

/* --json-lines: one object per size, as each size ends. */
void print_json_line(const struct perf_opts *o, const struct perf_result *res)
{
        printf("{");
        print_json_fields(o, res);
        printf("}\n");
        fflush(stdout);
}

/* --json under --qps > 1: each queue pair's share of res. */
static void print_json_per_qp(const struct perf_result *res)
{
        double s = res->seconds > 0 ? res->seconds : 1;

        printf(",\"per_qp\":[");
        for (int k = 0; k < res->nqps; k++) {
                const struct perf_qp_result *q = &res->qp[k];

                printf("%s{\"qp\":%d,\"msgs\":%llu,\"bytes\":%llu,"
                       "\"bytes_per_sec\":%.0f,\"msgs_per_sec\":%.0f,"
                       "\"enqueue_ns_avg\":%.1f,\"rx_msgs\":%llu,\"rx_bytes\":%llu,"
                       "\"rx_bytes_per_sec\":%.0f,\"tx_errors\":%llu,"
                       "\"verify_errors\":%llu,\"rx_err_ver\":%llu,"
                       "\"rx_err_oflow\":%llu,\"rx_err_flags\":%llu,"
                       "\"tx_err_rri\":%llu,\"resets\":%llu}",
                       k ? "," : "", k, (unsigned long long)q->msgs,
                       (unsigned long long)(q->msgs * res->size), (double)q->msgs * res->size / s,
                       (double)q->msgs / s,
                       q->enq_samples ? (double)q->enq_ns_sum / (double)q->enq_samples : 0.0,
                       (unsigned long long)q->rx_msgs, (unsigned long long)q->rx_bytes,
                       (double)q->rx_bytes / s, (unsigned long long)q->tx_errors,
                       (unsigned long long)q->verify_errors, (unsigned long long)q->rx_err_ver,
                       (unsigned long long)q->rx_err_oflow, (unsigned long long)q->rx_err_flags,
                       (unsigned long long)q->tx_err_rri, (unsigned long long)q->resets);
        }
        printf("]");
}

/*
 * --json: one document (iperf3's -J): the run's parameters, then the
 * results, one per size, each with a per-queue-pair breakdown under --qps > 1.
 */
void print_json_doc(const struct perf_opts *o, const struct perf_result *res, int n, int rc)
{
        int i;

        printf("{\"version\":\"%s\",\"command\":\"perf\",\"dev\":\"", NTBT_VERSION);
        cli_json_str(o->user_dev);
        printf(
            "\",\"role\":\"%s\",\"qps\":%d,\"rx_threads\":%u,\"bidir\":%s,\"tx_mode\":\"%s\","
            "\"zc\":%s,\"verify\":%s,\"seconds_per_size\":%.3f,\"mtu\":%u,\"work_ns_per_kib\":%llu,"
            "\"sizes\":[",
            o->c.loopback ? "loopback" : "client", o->qps, o->rx_threads,
            o->bidir ? "true" : "false", cli_tx_mode_name(o->c.tx_mode), o->zc ? "true" : "false",
            o->verify ? "true" : "false", o->seconds, o->c.mtu ? o->c.mtu : 65536,
            (unsigned long long)o->work_ns);
        for (i = 0; i < o->nsizes; i++) {
                if (o->sizes[i])
                        printf("%s%u", i ? "," : "", o->sizes[i]);
                else
                        printf("%s\"max\"", i ? "," : "");
        }
        printf("],\"results\":[");
        for (i = 0; i < n; i++) {
                printf("%s{", i ? "," : "");
                print_json_fields(o, &res[i]);
                if (o->qps > 1)
                        print_json_per_qp(&res[i]);
                printf("}");
        }
        printf("],\"failed\":%s}\n", rc ? "true" : "false");
        fflush(stdout);
}
