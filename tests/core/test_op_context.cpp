// OpStep: a step's progress lands in its share of the parent's, and a cancel
// of the parent reaches the step (at its start and whenever it reports).
#include <gtest/gtest.h>

#include <vector>

#include "quant/gptq.h"
#include "util/op_context.h"

namespace {

TEST(OpStep, ProgressMapsIntoTheParentsShareAndCancelReachesTheStep) {
  std::vector<double> seen;
  qs::OpContext parent([&](double f) { seen.push_back(f); });
  qs::OpStep step(parent, 0.25, 0.75);
  EXPECT_FALSE(step.context().cancelled());
  step.context().progress(0.0);
  step.context().progress(0.5);
  step.context().progress(1.0);
  EXPECT_EQ(seen, (std::vector<double>{0.25, 0.5, 0.75}));
  parent.cancel();
  EXPECT_FALSE(step.context().cancelled());  // not until the step reports
  step.context().progress(0.6);
  EXPECT_TRUE(step.context().cancelled());
  qs::OpStep late(parent, 0.75, 1.0);  // a step begun after the cancel is cancelled at once
  EXPECT_TRUE(late.context().cancelled());
}

// Through a real long step: GPTQ reports per block, so a parent cancelled
// after the step began stops it at its first report (without OpStep's
// forwarding it would run all four blocks and succeed).
TEST(OpStep, ParentCancelStopsAGptqStep) {
  const int rows = 16, cols = 512;
  std::vector<float> w(rows * cols), h(cols * cols, 0.0f);
  for (int i = 0; i < rows * cols; ++i) w[static_cast<std::size_t>(i)] = static_cast<float>((i * 7919) % 101) / 101.0f - 0.5f;
  for (int i = 0; i < cols; ++i) h[static_cast<std::size_t>(i * cols + i)] = 1.0f + static_cast<float>(i % 3);
  qs::OpContext parent;
  qs::OpStep step(parent, 0.0, 1.0);  // begun before the cancel: not cancelled at its start
  parent.cancel();
  qs::GptqSpec spec;
  spec.grid = {4, false, 128};
  auto r = qs::gptq(w.data(), rows, cols, h.data(), spec, step.context());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, qs::ErrorCode::Cancelled);
}

}  // namespace
