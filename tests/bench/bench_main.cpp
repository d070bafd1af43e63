#include <benchmark/benchmark.h>

#include "app/register_backends.h"

int main(int argc, char** argv) {
  qs::register_optional_backends();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
