// Plain text from the HTML part of a mail, for the ticket body when a client sent HTML only.
// It is a reader's rendering, not a browser's: paragraphs and line breaks where the page has
// them, list bullets, link targets written out (an agent reading the ticket cannot click), quoted
// replies ("<blockquote>") prefixed "> ", and nothing from scripts, styles or the <head>.
#pragma once

#include <string>
#include <string_view>

namespace slmhub::mail {

// UTF-8 HTML → UTF-8 text with "\n" line ends and no trailing newline:
// - <p>, <h1>…<h6>, <ul>/<ol>, <table>, <pre>, <blockquote>, <hr> are separated by a blank
//   line; <div>, <li>, <tr> and the other block elements start a new line; <br> is a line
//   break (two make a blank line); never more than one blank line in a row;
// - <li> is "- " in <ul> and "1. ", "2. "… in <ol>, indented two spaces per nesting level;
// - <a href="u">t</a> is "t (u)" unless u only repeats t (or is mailto:t, #…, javascript:);
// - <img alt="a"> is "a"; table cells are separated by a space;
// - character references are decoded (named ones of HTML 4 and the common HTML5 ones,
//   decimal and hex; &nbsp; is a space); an unknown one stays as written;
// - whitespace outside <pre> collapses to one space and lines are trimmed.
std::string html_to_text(std::string_view html);

}  // namespace slmhub::mail
