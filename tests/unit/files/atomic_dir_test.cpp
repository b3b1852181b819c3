// Publishing an export directory: readers see the old set or the new set, never a mix; an
// unchanged export is not rewritten; what a killed run left behind is cleaned up; a failure
// names the path and leaves nothing half-written.
#include "atomic_dir.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <stdexcept>

#include "error_of.hpp"
#include "sample_documents.hpp"
#include "test_files.hpp"

namespace slmhub::files {
namespace {

namespace fs = std::filesystem;

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.insert(entry.path().filename().string());
  return names;
}

ino_t inode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

// An export of three files.
std::vector<FileEntry> three_files() {
  return {{"invoices.csv", "a,b\r\n1,2\r\n"},
          {"INV-1.xml", "<Invoice/>\n"},
          {"CN-1.xml", "<CreditNote/>\n"}};
}

TEST(PublishDirectory, FirstPublishCreatesTheParentAndWritesEveryFile) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "exports" / "2027-03";
  EXPECT_TRUE(publish_directory(target, three_files()));
  EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml", "CN-1.xml"}));
  EXPECT_EQ(slmhub::test::read_text(target / "invoices.csv"), "a,b\r\n1,2\r\n");
  EXPECT_EQ(slmhub::test::read_text(target / "CN-1.xml"), "<CreditNote/>\n");
  EXPECT_EQ(names_in(dir.path() / "exports"), std::set<std::string>{"2027-03"});
}

TEST(PublishDirectory, AnIdenticalSetIsNotWrittenAgain) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "2027-03";
  ASSERT_TRUE(publish_directory(target, three_files()));
  const auto inode = inode_of(target);
  const auto csv_time = fs::last_write_time(target / "invoices.csv");
  const auto xml_time = fs::last_write_time(target / "INV-1.xml");
  const auto dir_time = fs::last_write_time(target);

  EXPECT_FALSE(publish_directory(target, three_files()));
  EXPECT_EQ(inode_of(target), inode);
  EXPECT_EQ(fs::last_write_time(target / "invoices.csv"), csv_time);
  EXPECT_EQ(fs::last_write_time(target / "INV-1.xml"), xml_time);
  EXPECT_EQ(fs::last_write_time(target), dir_time);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"2027-03"});
}

TEST(PublishDirectory, AChangedSetReplacesTheOldOneWhole) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "2027-03";
  ASSERT_TRUE(publish_directory(target, three_files()));
  const auto inode = inode_of(target);

  const std::vector<FileEntry> changed = {{"invoices.csv", "a,b\r\n1,3\r\n"},
                                          {"INV-1.xml", "<Invoice/>\n"}};
  EXPECT_TRUE(publish_directory(target, changed));
  EXPECT_NE(inode_of(target), inode);
  EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml"}));
  EXPECT_EQ(slmhub::test::read_text(target / "invoices.csv"), "a,b\r\n1,3\r\n");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"2027-03"});  // the old copy is gone

  // A file someone added to the directory is not part of the set: the set is written again.
  std::ofstream(target / "notes.txt") << "mine\n";
  EXPECT_TRUE(publish_directory(target, changed));
  EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml"}));
}

TEST(PublishDirectory, WhatAKilledRunLeftIsRemoved) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "2027-03";
  ASSERT_TRUE(publish_directory(target, three_files()));
  const fs::path stale = dir.path() / ".2027-03.partial-123";
  fs::create_directories(stale / "sub");
  std::ofstream(stale / "invoices.csv") << "half";
  // Another export's leftovers and look-alikes stay.
  fs::create_directories(dir.path() / ".2027-04.partial-123");
  fs::create_directories(dir.path() / "2027-03.partial-123");

  EXPECT_FALSE(publish_directory(target, three_files()));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_EQ(names_in(dir.path()),
            (std::set<std::string>{"2027-03", ".2027-04.partial-123", "2027-03.partial-123"}));
}

TEST(PublishDirectory, BadFileNamesAreRefusedBeforeAnythingIsWritten) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "2027-03";
  const std::vector<std::string> bad = {"", ".", "..", "a/b", "/etc", std::string("a\0b", 3)};
  for (const std::string& name : bad) {
    EXPECT_THROW(publish_directory(target, {{"ok.csv", "x"}, {name, "y"}}), std::invalid_argument)
        << name;
  }
  EXPECT_EQ(slmhub::test::error_of<std::invalid_argument>([&] {
              publish_directory(target, {{"a.xml", "1"}, {"a.xml", "2"}});
            }),
            "publish_directory: file name \"a.xml\" for " + target.string() + " is given twice");
  EXPECT_TRUE(names_in(dir.path()).empty());
}

TEST(PublishDirectory, AParentThatIsAFileFailsNamingThePathAndLeavesNothing) {
  test::ScratchDir dir;
  const fs::path file = dir.path() / "exports";
  std::ofstream(file) << "not a directory\n";
  const std::string error = slmhub::test::error_of<std::runtime_error>(
      [&] { publish_directory(file / "2027-03", three_files()); });
  EXPECT_EQ(error,
            "publish_directory: cannot create directory " + file.string() + ": Not a directory");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"exports"});
  EXPECT_EQ(slmhub::test::read_text(file), "not a directory\n");

  // A target that is a file is not replaced by a directory.
  EXPECT_EQ(
      slmhub::test::error_of<std::runtime_error>([&] { publish_directory(file, three_files()); }),
      "publish_directory: cannot replace " + file.string() + ": Not a directory");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"exports"});
  EXPECT_EQ(slmhub::test::read_text(file), "not a directory\n");
}

TEST(PublishDirectory, AFailedWriteLeavesThePreviousSetAndNoPartialDirectory) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "2027-03";
  ASSERT_TRUE(publish_directory(target, three_files()));
  const std::string too_long(300, 'x');  // over NAME_MAX: the second file cannot be created
  const std::string error = slmhub::test::error_of<std::runtime_error>([&] {
    publish_directory(target, {{"invoices.csv", "changed"}, {too_long, "y"}});
  });
  EXPECT_EQ(
      error,
      "publish_directory: cannot create " +
          (dir.path() / (".2027-03.partial-" + std::to_string(::getpid())) / too_long).string() +
          ": File name too long");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"2027-03"});
  EXPECT_EQ(slmhub::test::read_text(target / "invoices.csv"), "a,b\r\n1,2\r\n");
  EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml", "CN-1.xml"}));
}

TEST(PublishDirectory, AParentWithoutWritePermissionFailsNamingThePath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  test::ScratchDir dir;
  const fs::path parent = dir.path() / "exports";
  const fs::path target = parent / "2027-03";
  ASSERT_TRUE(publish_directory(target, three_files()));
  fs::permissions(parent, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string error = slmhub::test::error_of<std::runtime_error>([&] {
    publish_directory(target, {{"invoices.csv", "changed"}});
  });
  fs::permissions(parent, fs::perms::owner_all);
  EXPECT_NE(error.find(parent.string()), std::string::npos) << error;
  EXPECT_NE(error.find("Permission denied"), std::string::npos) << error;
  EXPECT_EQ(names_in(parent), std::set<std::string>{"2027-03"});
  EXPECT_EQ(slmhub::test::read_text(target / "invoices.csv"), "a,b\r\n1,2\r\n");
}

}  // namespace
}  // namespace slmhub::files

namespace slmhub::files {
namespace {

// The streaming form: files staged one at a time show nowhere until commit(); a stage given
// up (an export whose transaction failed) leaves the previous set as it was and nothing aside.
TEST(StagedDirectory, NothingShowsUntilCommitAndAnAbandonedStageLeavesNothing) {
  test::ScratchDir dir;
  const fs::path target = dir.path() / "out" / "invoices-2026-12";
  ASSERT_TRUE(publish_directory(target, three_files()));
  {
    StagedDirectory staged(target);
    staged.add({"INV-2.xml", "<Invoice/>\n"});
    EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml", "CN-1.xml"}));
    EXPECT_EQ(names_in(dir.path() / "out").size(), 2u);  // the target and the stage beside it
  }
  EXPECT_EQ(names_in(dir.path() / "out"), std::set<std::string>{"invoices-2026-12"});
  EXPECT_EQ(names_in(target), (std::set<std::string>{"invoices.csv", "INV-1.xml", "CN-1.xml"}));

  StagedDirectory staged(target);
  staged.add({"INV-9.xml", "<Invoice/>\n"});
  staged.clear();  // a transaction that runs again starts over
  staged.add({"INV-2.xml", "<Invoice>2</Invoice>\n"});
  EXPECT_THROW(staged.add({"INV-2.xml", "again"}), std::invalid_argument);
  staged.commit();
  EXPECT_EQ(names_in(target), std::set<std::string>{"INV-2.xml"});
  EXPECT_EQ(names_in(dir.path() / "out"), std::set<std::string>{"invoices-2026-12"});
}

// A parent that exists but takes no new directory (procfs here; a read-only directory for
// anyone but root) fails at construction, before any file is given to it.
TEST(StagedDirectory, APlaceThatCannotTakeTheFilesFailsAtOnce) {
  const std::string error = slmhub::test::error_of<WriteError>(
      [] { StagedDirectory staged("/proc/self/invoices-2026-12"); });
  EXPECT_NE(error.find("/proc/self/.invoices-2026-12.partial-"), std::string::npos) << error;
}

}  // namespace
}  // namespace slmhub::files
