// Drawing plots with gnuplot (an outside program, Debian `gnuplot-nox`) as
// SVG text, for the HTML report (html_report.h).
//
// Contract:
//  - render_svgs() writes each plot's script and data files into a fresh
//    temporary directory (one subdirectory per plot), runs ONE gnuplot
//    process over all of them (`BINARY plots.gp`, stdin /dev/null, no shell),
//    reads back each plot's SVG and removes the directory (also on error). It
//    returns the SVGs in the order of the plots, each from "<svg" to its end
//    (the XML declaration is dropped).
//  - The script of a plot sees its data files under their given names (the
//    working directory is the plot's own subdirectory) and runs after
//    `set terminal svg size W,H noenhanced ...` and `set output`; it must
//    plot once and not change the terminal or the output. Text is not
//    "enhanced": names are printed as given; quote them with gnuplot_quote().
//  - Errors throw GnuplotError, whose message names the command: the binary
//    is missing or cannot be started (with a hint to install gnuplot-nox),
//    gnuplot exits non-zero (with the end of its stderr), or a plot wrote no
//    SVG. Nothing is left behind in the temporary directory.
//  - Thread-compatible: no shared state; concurrent calls use distinct
//    temporary directories.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracelm {

class GnuplotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GnuplotOptions {
  // The program to run: $TRACELM_GNUPLOT when set and not empty, else
  // "gnuplot" (looked up in PATH).
  std::string binary = default_gnuplot_binary();
  static std::string default_gnuplot_binary();
};

struct GnuplotPlot {
  int width = 720, height = 420;                          // SVG size in pixels
  std::string script;                                     // gnuplot commands (see the contract)
  std::vector<std::pair<std::string, std::string>> data;  // file name (no '/'), content
};

std::vector<std::string> render_svgs(const std::vector<GnuplotPlot>& plots,
                                     const GnuplotOptions& opt = {});
std::string render_svg(const GnuplotPlot& plot, const GnuplotOptions& opt = {});

// True when `binary --version` runs and exits 0.
bool gnuplot_available(const std::string& binary = GnuplotOptions::default_gnuplot_binary());

// A gnuplot string literal with the text as given: single-quoted, ' doubled,
// control characters (newlines included) replaced by spaces.
std::string gnuplot_quote(std::string_view text);

}  // namespace tracelm
