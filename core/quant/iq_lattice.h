#pragma once
// The lattices of ggml's i-quants (IQ1_S/M, IQ2_XXS/XS/S, IQ3_XXS/S): a grid
// type stores each group of 4 (IQ3) or 8 (IQ1, IQ2) magnitudes as the index
// of one lattice point. A quantizer rounds each coordinate to a level, packs
// the levels into a code and looks the code up; a code that is no lattice
// point is replaced by the best of its nearest points (the candidates ggml's
// quantizers search, in the same order, so the same ties win).
#include <cstdint>
#include <span>
#include <vector>

namespace qs::iq {

// The points, as ggml publishes them (iq_lattice_points.cpp): field i of an
// entry (`bits` bits wide) is coordinate i's level l, standing for 2 l + 1.
extern const std::uint16_t kIq2xxsPoints[256], kIq2xsPoints[512], kIq2sPoints[1024], kIq1sPoints[2048];
extern const std::uint16_t kIq3xxsPoints[256], kIq3sPoints[512];

class Lattice {
 public:
  // `max_level`: the highest level a quantizer rounds to (codes with higher
  // levels are never looked up); `nwant`: a neighbour list holds every point
  // within the code's `nwant` smallest distinct squared distances.
  Lattice(const std::uint16_t* points, int count, int dims, int bits, int max_level, int nwant);

  std::uint16_t point(int index) const { return points_[static_cast<std::size_t>(index)]; }
  // Coordinate i of point `index` as 2 l + 1.
  int position(int index, int i) const { return positions_[static_cast<std::size_t>(index * dims_ + i)]; }
  // The point's index for a code of levels, or -1 when the code is no point.
  int index_of(std::uint32_t code) const { return map_[code]; }
  // For a code that is no point: its candidates, nearest first (by squared
  // distance of the 2 l + 1 positions, then by index).
  std::span<const std::uint16_t> neighbours(std::uint32_t code) const;
  // The code's candidate nearest to xval (one value per coordinate) at
  // `scale` under `weight`, sum w (scale q - x)^2 summed in coordinate order,
  // q = 2 l + 1 or, with `level_value`, level_value[l] (IQ1's shifted -1/0/1);
  // the first of equals wins. Its levels go to L; returns its index.
  int best_neighbour(std::uint32_t code, const float* xval, const float* weight, float scale, std::int8_t* L,
                     const float* level_value = nullptr) const;
  // Packs one level per coordinate into a code.
  std::uint32_t code_of(const std::int8_t* L) const {
    std::uint32_t u = 0;
    for (int i = 0; i < dims_; ++i) u |= static_cast<std::uint32_t>(L[i]) << (bits_ * i);
    return u;
  }

 private:
  int dims_, bits_, mask_;
  std::vector<std::uint16_t> points_;
  std::vector<std::int8_t> positions_;       // point x coordinate -> 2 l + 1 (the searches' inner loops read these)
  std::vector<std::int32_t> map_;            // code -> index, or -1
  std::vector<std::uint32_t> first_;          // code -> start of its list in lists_ (off-lattice reachable codes)
  std::vector<std::uint16_t> lists_;
  std::vector<std::uint16_t> counts_;        // code -> list length
};

// Built once, on first use (a few hundred ms for IQ1's 2048 points).
const Lattice& iq2xxs_lattice();
const Lattice& iq2xs_lattice();
const Lattice& iq2s_lattice();
const Lattice& iq1s_lattice();
const Lattice& iq3xxs_lattice();
const Lattice& iq3s_lattice();

// Magnitudes and sign bits of n values in groups of 8. With `even_parity`
// (the types that store 7 sign bits per 8), a group with an odd number of
// negatives gets its least important value (smallest w x^2, the first of
// equals) flipped, so that the stored 7 bits imply the 8th.
void split_signs(const float* x, const float* weight, int n, bool even_parity, float* xval, std::uint8_t* signs);

// The 7 sign bits of a group of 8 stored, the 8th implied by even parity (ggml's ksigns_iq2xs).
inline std::uint8_t signs_with_parity(std::uint8_t seven) {
  return static_cast<std::uint8_t>(seven | ((__builtin_popcount(seven) & 1) << 7));
}

}  // namespace qs::iq
