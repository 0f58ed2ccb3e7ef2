// The downstream section of the HTML report: for each experiment (protocol.h)
// a table (mean ± sd over seeds of every metric, gap to real ± SE, pass) and
// a bar chart of the primary metric per app and training set with error bars
// (± sd over seeds), drawn by gnuplot (report/gnuplot.h).
//
// Contract:
//  - Returns HTML (an <h2> per experiment, no <html>/<body>) to put inside a
//    report page; every name is HTML-escaped; SVG ids are prefixed with
//    "ds<i>-" so that they do not collide with the page's other plots.
//  - gnuplot runs once for all charts. When it fails: throws GnuplotError,
//    or with require_plots = false writes the tables alone and says why.
//  - A function of its arguments (no clock, no randomness).
#pragma once

#include <string>
#include <vector>

#include "downstream/protocol.h"
#include "report/gnuplot.h"

namespace tracelm::downstream {

std::string downstream_html(const std::vector<ExperimentResult>& results,
                            const GnuplotOptions& gnuplot = {}, bool require_plots = true);

// A whole page holding only the downstream section.
std::string downstream_html_page(const std::vector<ExperimentResult>& results,
                                 const GnuplotOptions& gnuplot = {}, bool require_plots = true);

}  // namespace tracelm::downstream
