// `sentinel route-explain FILE --url URL [--method M] [-H 'name: value']...`: which route a
// request would take under a config, and why each route evaluated before it did not match.
#pragma once

namespace sentinel::cli {

// argv[0] is the first argument after "route-explain". Exit status: 0 a route matches,
// 1 none does (the proxy would answer 404, or 400 for an invalid path), 2 usage or config error.
int route_explain(int argc, char** argv);

}  // namespace sentinel::cli
