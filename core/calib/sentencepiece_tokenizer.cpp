#include "calib/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include "calib/spm_tokenizer.h"
#include "util/read_text_file.h"

namespace qs {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁"


}  // namespace

Result<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  // read_text_file refuses a file over the limit before allocating; the
  // library's own Load would read any size.
  auto bytes = read_text_file(path, kMaxFileBytes);
  if (!bytes) return bytes.error();
  return from_bytes(*bytes, path);
}

Result<SentencePieceTokenizer> SentencePieceTokenizer::from_bytes(std::string_view bytes, const std::string& label) {
  if (bytes.size() > kMaxFileBytes) return Error::format(label + ": too large for a SentencePiece model");
  if (bytes.empty()) return Error::format(label + ": empty file, not a SentencePiece model");
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  // The library reports a broken model through its status (protobuf parse
  // failure, missing <unk>, duplicate pieces …), never by aborting on Load.
  const auto status = sp->LoadFromSerializedProto(bytes);
  if (!status.ok())
    return Error::format(label + ": not a SentencePiece model the library accepts: " + status.ToString());
  const int n = sp->GetPieceSize();
  if (n <= 0) return Error::format(label + ": the SentencePiece model has no pieces");
  SentencePieceTokenizer t;
  t.size_ = static_cast<std::size_t>(n);
  t.bos_ = sp->bos_id();  // -1 when the model has no BOS piece
  t.eos_ = sp->eos_id();
  t.add_bos_ = t.bos_ >= 0;
  t.sp_ = std::move(sp);
  return t;
}

std::vector<std::int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<std::int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  if (text.empty()) return out;
  std::vector<int> ids;
  // Encode fails only on an unloaded model, which from_bytes rules out; the
  // ids are then empty, as EncodeAsIds would give.
  if (!sp_->Encode(text, &ids).ok()) return out;
  out.insert(out.end(), ids.begin(), ids.end());
  return out;
}

std::string SentencePieceTokenizer::decode(std::span<const std::int32_t> ids) const {
  std::vector<int> in;
  in.reserve(ids.size());
  for (const std::int32_t id : ids)
    if (id >= 0 && static_cast<std::size_t>(id) < size_) in.push_back(id);
  std::string out;
  if (!sp_->Decode(in, &out).ok()) return {};
  return out;
}

std::string SentencePieceTokenizer::piece_text(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= size_) return {};
  if (sp_->IsControl(id) || sp_->IsUnused(id)) return {};
  const std::string& piece = sp_->IdToPiece(id);
  if (sp_->IsByte(id)) {
    const int b = parse_byte_piece(piece);
    return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
  }
  std::string out;
  out.reserve(piece.size());
  for (std::size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      i += kSpace.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

}  // namespace qs
