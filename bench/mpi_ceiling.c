/*
 * mpi_ceiling.c: what MPI alone does between two ranks on this machine, measured in the
 * same run as the mpi_* metrics (bench/mpi/cluster.lua) so they read as ratios:
 *   ceiling_mpi_send_gb_per_second   one 100 MB MPI_Send from rank 1 to rank 0
 *   ceiling_mpi_roundtrip_seconds    a 1-byte MPI_Send and its reply, rank 0 to rank 1
 * Each is the median of 5 runs after a warm-up. Run under mpirun -n 2; rank 0 prints
 * "<metric> <median> <unit>" lines on stdout, progress on stderr. CRAY_BENCH_QUICK=1 uses
 * tiny sizes; CRAY_BENCH_FILTER picks metrics by substring, as bench/lib.lua does.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static const char *filter = "";

static int wanted(const char *name) { return strstr(name, filter) != NULL; }

static void report(int rank, const char *name, const char *unit, double *v) {
  if (rank != 0 || !wanted(name)) return;
  qsort(v, RUNS, sizeof *v, cmp);
  fprintf(stderr, "  %-46s -> %.4g %s\n", name, v[RUNS / 2], unit);
  printf("%s %.9f %s\n", name, v[RUNS / 2], unit);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2) {
    fprintf(stderr, "mpi_ceiling: run it with mpirun -n 2\n");
    MPI_Finalize();
    return 2;
  }
  if (getenv("CRAY_BENCH_FILTER")) filter = getenv("CRAY_BENCH_FILTER");
  int quick = getenv("CRAY_BENCH_QUICK") && strcmp(getenv("CRAY_BENCH_QUICK"), "1") == 0;
  size_t len = quick ? (size_t)1 << 20 : (size_t)100 << 20;
  int trips = quick ? 10 : 2000;
  char *buf = malloc(len);
  if (!buf) {
    fprintf(stderr, "mpi_ceiling: no memory for %zu bytes\n", len);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  memset(buf, 1, len);
  double send[RUNS], trip[RUNS];
  for (int r = -1; r < RUNS && wanted("ceiling_mpi_send_gb_per_second"); r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (rank == 0) MPI_Recv(buf, (int)len, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else if (rank == 1) MPI_Send(buf, (int)len, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
    if (r >= 0) send[r] = (double)len / (MPI_Wtime() - t0) / 1e9;
  }
  for (int r = -1; r < RUNS && wanted("ceiling_mpi_roundtrip_seconds"); r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < trips; i++) {
      if (rank == 0) {
        MPI_Send(buf, 1, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
        MPI_Recv(buf, 1, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else if (rank == 1) {
        MPI_Recv(buf, 1, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, 1, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
      }
    }
    if (r >= 0) trip[r] = (MPI_Wtime() - t0) / trips;
  }
  report(rank, "ceiling_mpi_send_gb_per_second", "gb_per_second", send);
  report(rank, "ceiling_mpi_roundtrip_seconds", "seconds", trip);
  free(buf);
  MPI_Finalize();
  return 0;
}
