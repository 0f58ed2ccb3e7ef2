#include "report/gnuplot.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

extern char** environ;

namespace tracelm {

namespace {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/tracelm-gnuplot-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw GnuplotError(
          fmt::format("cannot create a temporary directory {}: {}", tmpl, std::strerror(errno)));
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_text(const std::string& path, std::string_view text) {
  std::ofstream f(path, std::ios::binary);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) throw GnuplotError(fmt::format("cannot write {}", path));
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs argv with stdin from /dev/null and stdout + stderr into log_path.
// Returns the wait status; throws when the program cannot be started.
int run_program(const std::vector<std::string>& argv, const std::string& log_path,
                const std::string& command_text) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw GnuplotError(fmt::format(
        "cannot run gnuplot: `{}`: {} (install it: apt-get install gnuplot-nox, or name the "
        "program in TRACELM_GNUPLOT)",
        command_text, std::strerror(rc)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      throw GnuplotError(fmt::format("`{}`: waitpid: {}", command_text, std::strerror(errno)));
  return status;
}

std::string tail(const std::string& s, size_t n) {
  std::string t = s.size() > n ? "..." + s.substr(s.size() - n) : s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace

std::string GnuplotOptions::default_gnuplot_binary() {
  const char* e = std::getenv("TRACELM_GNUPLOT");
  return e && *e ? std::string(e) : std::string("gnuplot");
}

std::string gnuplot_quote(std::string_view text) {
  std::string q = "'";
  for (char c : text) {
    if (c == '\'')
      q += "''";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      q += ' ';
    else
      q += c;
  }
  return q + "'";
}

std::vector<std::string> render_svgs(const std::vector<GnuplotPlot>& plots,
                                     const GnuplotOptions& opt) {
  if (plots.empty()) return {};
  ScratchDir dir;
  std::string script;
  for (size_t i = 0; i < plots.size(); ++i) {
    const GnuplotPlot& p = plots[i];
    std::string sub = fmt::format("{}/plot{}", dir.path(), i);
    fs::create_directory(sub);
    for (auto& [name, content] : p.data) {
      if (name.empty() || name.find('/') != std::string::npos)
        throw GnuplotError(fmt::format("bad data file name '{}' (plot {})", name, i));
      write_text(sub + "/" + name, content);
    }
    script += fmt::format(
        "reset\ncd {}\nset terminal svg size {},{} noenhanced font 'sans,11' background "
        "'#ffffff'\nset output 'plot.svg'\n",
        gnuplot_quote(sub), p.width, p.height);
    script += p.script;
    script += "\nunset output\n";
  }
  std::string script_path = dir.path() + "/plots.gp", log_path = dir.path() + "/gnuplot.log";
  write_text(script_path, script);
  std::string command = opt.binary + " " + script_path;
  int status = run_program({opt.binary, script_path}, log_path, command);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why = WIFEXITED(status)     ? fmt::format("exit status {}", WEXITSTATUS(status))
                      : WIFSIGNALED(status) ? fmt::format("signal {}", WTERMSIG(status))
                                            : std::string("abnormal end");
    throw GnuplotError(
        fmt::format("gnuplot failed: `{}`: {}: {}", command, why, tail(read_text(log_path), 2000)));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < plots.size(); ++i) {
    std::string svg = read_text(fmt::format("{}/plot{}/plot.svg", dir.path(), i));
    size_t at = svg.find("<svg");
    if (at == std::string::npos || svg.find("</svg>", at) == std::string::npos)
      throw GnuplotError(fmt::format("gnuplot wrote no SVG for plot {}: `{}`: {}", i, command,
                                     tail(read_text(log_path), 2000)));
    out.push_back(svg.substr(at));
  }
  return out;
}

std::string render_svg(const GnuplotPlot& plot, const GnuplotOptions& opt) {
  return render_svgs({plot}, opt).at(0);
}

bool gnuplot_available(const std::string& binary) {
  try {
    ScratchDir dir;
    int status = run_program({binary, "--version"}, dir.path() + "/log", binary + " --version");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  } catch (const GnuplotError&) {
    return false;
  }
}

}  // namespace tracelm
