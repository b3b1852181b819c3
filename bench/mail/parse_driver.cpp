// bench_mail_parse: the parse-only rate of slmhub::mail::parse_mail (GMime 3 plus slmhub's
// body choice, charset conversion to UTF-8, HTML-to-text, attachment SHA-256) over the
// benchmark corpus, beside bare GMime on the same bytes (parse, read the subject, decode every
// leaf part into memory: the floor parse_mail stands on). Single-threaded.
//   bench_mail_parse CORPUS_DIR [--repeat N]
// The files are read into memory first; one warm-up pass each, then N passes alternating the
// two, medians reported. Then big.eml (25 MiB) once through parse_mail, with this process's
// peak RSS growth. Prints key=value lines for bench/mail/run.sh.
#include <gmime/gmime.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common.hpp"
#include "mime.hpp"

namespace {

using namespace slmhub::bench::mail;

struct Totals {
  std::size_t attachments = 0;
  std::size_t text_bytes = 0;
  std::size_t defects = 0;
  std::size_t subjects_wrong = 0;
};

Totals parse_all(const std::vector<CorpusMessage>& corpus) {
  Totals t;
  for (const auto& m : corpus) {
    const slmhub::mail::ParsedMail mail = slmhub::mail::parse_mail(m.raw);
    t.attachments += mail.attachments.size();
    t.text_bytes += mail.text.size();
    t.defects += mail.defects.size();
    t.subjects_wrong += mail.subject != m.subject;
  }
  return t;
}

// Bare GMime: what any GMime user does at least. Counts decoded bytes so nothing is elided.
void decode_part(GMimeObject* /*parent*/, GMimeObject* part, gpointer user_data) {
  auto* bytes = static_cast<std::size_t*>(user_data);
  if (!GMIME_IS_PART(part)) return;
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(part));
  if (content == nullptr) return;
  GMimeStream* mem = g_mime_stream_mem_new();
  g_mime_data_wrapper_write_to_stream(content, mem);
  *bytes += g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem))->len;
  g_object_unref(mem);
}

std::size_t gmime_all(const std::vector<CorpusMessage>& corpus, GMimeParserOptions* options) {
  std::size_t bytes = 0;
  for (const auto& m : corpus) {
    GMimeStream* stream = g_mime_stream_mem_new_with_buffer(m.raw.data(), m.raw.size());
    GMimeParser* parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage* message = g_mime_parser_construct_message(parser, options);
    if (message != nullptr) {
      const char* subject = g_mime_message_get_subject(message);
      bytes += subject ? std::strlen(subject) : 0;
      g_mime_message_foreach(message, decode_part, &bytes);
      g_object_unref(message);
    }
    g_object_unref(parser);
    g_object_unref(stream);
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_mail_parse CORPUS_DIR [--repeat N]\n");
    return 2;
  }
  const std::string dir = argv[1];
  int repeat = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--repeat") repeat = std::stoi(argv[i + 1]);
  }
  try {
    std::vector<CorpusMessage> corpus;
    CorpusMessage big;
    for (auto& m : read_corpus(dir, true)) {
      if (m.kind == "big") {
        big = std::move(m);
      } else {
        corpus.push_back(std::move(m));
      }
    }
    std::size_t bytes = 0;
    for (const auto& m : corpus) bytes += m.raw.size();

    g_mime_init();  // parse_mail's own setup is idempotent beside this
    GMimeParserOptions* options = g_mime_parser_options_new();
    Totals totals = parse_all(corpus);  // warm-up
    std::size_t gmime_bytes = gmime_all(corpus, options);
    std::vector<double> slm, bare;
    for (int r = 0; r < repeat; ++r) {
      auto start = Clock::now();
      totals = parse_all(corpus);
      slm.push_back(seconds_since(start));
      start = Clock::now();
      gmime_bytes = gmime_all(corpus, options);
      bare.push_back(seconds_since(start));
    }
    const double s = median(slm), g = median(bare);
    std::printf("messages=%zu bytes=%zu repeat=%d\n", corpus.size(), bytes, repeat);
    std::printf("parse_mail_seconds=%.4f parse_mail_msgs_per_s=%.1f parse_mail_mb_per_s=%.2f\n", s,
                static_cast<double>(corpus.size()) / s, static_cast<double>(bytes) / s / 1e6);
    std::printf(
        "parse_mail_attachments=%zu parse_mail_text_bytes=%zu parse_mail_defects=%zu "
        "parse_mail_subjects_wrong=%zu\n",
        totals.attachments, totals.text_bytes, totals.defects, totals.subjects_wrong);
    std::printf(
        "gmime_seconds=%.4f gmime_msgs_per_s=%.1f gmime_mb_per_s=%.2f "
        "gmime_decoded_bytes=%zu\n",
        g, static_cast<double>(corpus.size()) / g, static_cast<double>(bytes) / g / 1e6,
        gmime_bytes);

    if (!big.raw.empty()) {
      reset_peak_rss("self");
      const long before = proc_status_kib("self", "VmRSS");
      const auto start = Clock::now();
      const slmhub::mail::ParsedMail mail = slmhub::mail::parse_mail(big.raw);
      const double seconds = seconds_since(start);
      const long peak = proc_status_kib("self", "VmHWM");
      std::printf(
          "big_bytes=%zu big_parse_seconds=%.4f big_parse_rss_growth_kib=%ld "
          "big_attachment_bytes=%zu\n",
          big.raw.size(), seconds, peak - before,
          mail.attachments.empty() ? std::size_t{0} : mail.attachments[0].size);
    }
    g_mime_parser_options_free(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_mail_parse: %s\n", e.what());
    return 1;
  }
  return 0;
}
