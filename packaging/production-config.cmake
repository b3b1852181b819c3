# The packaged /etc/slmhub/slmhub.properties, made from config/slmhub.example.properties so the
# two never drift apart: the same keys and comments, with the paths of an installed server.
#   cmake -DINPUT=config/slmhub.example.properties -DOUTPUT=slmhub.properties -P this file
# Fails, rather than shipping a path into the source tree, when a key below is missing or when
# a path-valued key the example gains later is still relative.
cmake_minimum_required(VERSION 3.25)

set(state /var/lib/slmhub)
# key -> value in the package. Host paths would resolve from /etc/slmhub and a plugin's from
# the working directory: both wrong for data, so every one is absolute. The example's demo
# values go back to the code's defaults: an installed server must not answer mail as
# db-requests@example.org or draft reports on Chicago's clock until the operator says so.
set(production_keys
  "db.url=sqlite:${state}/slmhub.db"
  "auth.admin_token_file=${state}/admin.token"
  "plugins.billing_export.export.dir=${state}/exports"
  "plugins.availability.timezone=Etc/GMT+12"
  "plugins.email_intake.queues=")

file(READ "${INPUT}" text)
foreach(entry IN LISTS production_keys)
  string(FIND "${entry}" "=" eq)
  string(SUBSTRING "${entry}" 0 ${eq} key)
  math(EXPR from "${eq} + 1")
  string(SUBSTRING "${entry}" ${from} -1 value)
  string(REPLACE "." "\\." key_re "${key}")
  string(REGEX MATCHALL "(^|\n)${key_re} *=[^\n]*" found "${text}")
  list(LENGTH found count)
  if(NOT count EQUAL 1)
    message(FATAL_ERROR "${INPUT}: expected one '${key} = ...' line, found ${count}")
  endif()
  set(line "${key} = ${value}")
  string(STRIP "${line}" line)  # `key =` when the value is empty, as in the example
  string(REGEX REPLACE "(^|\n)${key_re} *=[^\n]*" "\\1${line}" text "${text}")
endforeach()

# The example's opening lines are about `make run`; the installed file says what it is.
string(REPLACE "# `make run` uses this file as it is.\n" "" text "${text}")
set(header [=[
# /etc/slmhub/slmhub.properties: the installed server's configuration (docs/packaging.md),
# made from config/slmhub.example.properties with the paths of the package: data in
# /var/lib/slmhub, plugins in /usr/lib/slmhub/plugins (plugins.dir empty). A dpkg conffile:
# an upgrade keeps your changes. Put passwords in /etc/slmhub/environment (SLMHUB_DB_URL=...,
# read by the unit and by the package's `slmhub migrate`) or in secrets.<name>.file.
# Before mail can become tickets, set your team addresses (plugins.email_intake.queues) and
# the zone reports are drafted in (plugins.availability.timezone; the default here, Etc/GMT+12,
# drafts each month once it is over everywhere).
#
]=])

# Every path-valued key (..._file, ..._dir, ...dir, db.url) is empty, absolute or a server URL.
string(REGEX MATCHALL "(^|\n)[a-z0-9_.]+ *=[^\n]*" lines "${text}")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^\n" "" line "${line}")
  string(REGEX MATCH "^([a-z0-9_.]+) *= *(.*)$" _ "${line}")
  set(key "${CMAKE_MATCH_1}")
  set(value "${CMAKE_MATCH_2}")
  if(value STREQUAL "" OR NOT key MATCHES "(_file|_dir|\\.dir|^db\\.url)$")
    continue()
  endif()
  if(key STREQUAL "plugins.dir")
    message(FATAL_ERROR "${INPUT}: plugins.dir must stay empty (the binary's ../plugins)")
  endif()
  if(NOT value MATCHES "^(/|sqlite:/|postgresql://)")
    message(FATAL_ERROR "${INPUT}: '${key} = ${value}' is a relative path; give it an "
                        "absolute one for the package in ${CMAKE_CURRENT_LIST_FILE}")
  endif()
endforeach()

file(WRITE "${OUTPUT}.tmp" "${header}${text}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
