// Headless Chromium for page tests (DESIGN.md §6): load a URL, read the rendered DOM, take a
// screenshot. Each run gets a fresh profile and home directory, removed afterwards, and the
// flags that keep the browser off the network (this network refuses its background
// connections, which would otherwise stall a run).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace slmhub::test {

class Chromium {
 public:
  // The browser on PATH (`chromium`, else `chromium-browser`); nullopt when neither is there.
  static std::optional<Chromium> find();

  explicit Chromium(std::filesystem::path binary,
                    std::chrono::seconds timeout = std::chrono::seconds(120));

  // The DOM after `url` has loaded, as HTML text (--dump-dom). Throws std::runtime_error with
  // the browser's exit status and the end of its stderr when it fails or overruns the timeout.
  std::string dump_dom(const std::string& url) const;
  // A PNG of the first `width` × `height` CSS pixels of `url`, written to `png`. Throws as
  // dump_dom, or when no file was written.
  void screenshot(const std::string& url, const std::string& png, int width, int height) const;

  const std::filesystem::path& binary() const { return binary_; }

 private:
  // Runs the browser with the common flags plus `args`; returns its stdout.
  std::string run(const std::vector<std::string>& args) const;

  std::filesystem::path binary_;
  std::chrono::seconds timeout_;
};

// `file://` URL of a local file (made absolute, unsafe bytes percent-encoded).
std::string file_url(const std::filesystem::path& path);

// A fixture for tests that need the browser: they are skipped when it is not installed, but
// fail instead under CI (environment CI=true), so a CI run can never pass by skipping them.
class ChromiumTest : public ::testing::Test {
 protected:
  void SetUp() override;
  const Chromium& chromium() const { return *chromium_; }

 private:
  std::optional<Chromium> chromium_;
};

}  // namespace slmhub::test
