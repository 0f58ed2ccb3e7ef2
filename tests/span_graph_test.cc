// The span -> call-graph rule (src/ingest/spans/span_graph.h) on hand-made span sets.
#include <gtest/gtest.h>

#include "core/validate.h"
#include "ingest/spans/span_graph.h"
#include "test_util.h"

namespace tracelm {
namespace {

using testing::edges_text;

constexpr int64_t kMs = 1000000;
constexpr int64_t kT0 = 1700000000000 * kMs;

Span mk(std::string id, std::string parent, std::string service, std::string name, SpanKind kind,
        double start_ms, double end_ms) {
  Span s;
  s.trace_id = "t1";
  s.span_id = std::move(id);
  s.parent_id = std::move(parent);
  s.service = std::move(service);
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = kT0 + static_cast<int64_t>(start_ms * kMs);
  s.end_ns = kT0 + static_cast<int64_t>(end_ms * kMs);
  return s;
}

// The OpenTelemetry shape: SERVER root, CLIENT + SERVER pairs across services,
// an INTERNAL span, and a database CLIENT span without a server child.
std::vector<Span> otel_trace() {
  using K = SpanKind;
  std::vector<Span> v;
  v.push_back(mk("a", "", "frontend", "GET /checkout", K::kServer, 0, 11));
  v.back().set_attribute("http.request.method", "GET");
  v.push_back(mk("b", "a", "frontend", "POST", K::kClient, 1.7, 10.5));
  v.back().set_attribute("http.request.method", "POST");
  v.push_back(mk("c", "b", "checkout", "POST /checkout", K::kServer, 2.3, 9.8));
  v.push_back(mk("d", "c", "checkout", "compute-total", K::kInternal, 2.8, 4.2));
  v.push_back(mk("e", "c", "checkout", "payment.Payment/Charge", K::kClient, 4.4, 9.2));
  v.back().set_attribute("rpc.system.name", "grpc");
  v.push_back(mk("f", "e", "payment", "payment.Payment/Charge", K::kServer, 5.1, 8.6));
  v.push_back(mk("g", "f", "payment", "INSERT payments", K::kClient, 5.5, 7.9));
  v.back().set_attribute("db.system.name", "postgresql");
  return v;
}

TEST(SpanGraph, ClientServerPairsBecomeOneCallWithTheCallersTimes) {
  std::vector<Span> v = otel_trace();
  std::reverse(v.begin(), v.end());  // input order must not matter
  SpanGraph r = build_span_graph(v, {});
  ASSERT_EQ(r.reject, SpanReject::kNone) << r.detail;
  EXPECT_EQ(edges_text(r.graph),
            "0 USER>frontend http 0-11\n"
            "0.1 frontend>checkout http 2-11\n"  // client span 1.7-10.5 ms, rounded
            "0.1.1 checkout>payment rpc 4-9\n"
            "0.1.1.1 payment>postgresql db 6-8\n");
  EXPECT_EQ(r.graph.service, "frontend#GET_|checkout");
  EXPECT_EQ(r.graph.trace_id, "t1");
  EXPECT_EQ(r.graph.start_unix_ns, kT0);
  EXPECT_EQ(r.collapsed_spans, 3u);  // b, d, e fold into their service's call
  EXPECT_EQ(r.type_fallbacks, 0u);
  EXPECT_TRUE(is_valid(validate(r.graph), true));
}

TEST(SpanGraph, OperationNodesNameServiceAndOperation) {
  std::vector<Span> v = otel_trace();
  SpanGraphOptions o;
  o.node = NodeMode::kOperation;
  SpanGraph r = build_span_graph(v, o);
  ASSERT_EQ(r.reject, SpanReject::kNone);
  ASSERT_EQ(r.graph.edges.size(), 4u);
  EXPECT_EQ(r.graph.edges[1].caller, "frontend#GET_|checkout");
  EXPECT_EQ(r.graph.edges[1].callee, "checkout#POST_|checkout");
  EXPECT_EQ(r.graph.edges[3].callee, "postgresql#INSERT_payments");
  EXPECT_TRUE(is_valid(validate(r.graph)));
}

TEST(SpanGraph, KindlessTableInfersClientsSqlPeersAndNumbersChildrenByStart) {
  using K = SpanKind;
  // The TrainTicket shape: a gateway catch-all root, a handler chain, client
  // spans named "HTTP POST", SQL spans inside a repository span.
  std::vector<Span> v;
  v.push_back(mk("r", "", "gw", "/*", K::kUnspecified, 0, 30));
  v.push_back(mk("h", "r", "gw", "FilteringWebHandler.handle", K::kUnspecified, 0.5, 29));
  v.push_back(mk("c2", "r", "gw", "HTTP GET", K::kUnspecified, 20, 28));  // starts later
  v.push_back(mk("c1", "r", "gw", "HTTP POST", K::kUnspecified, 1, 18));
  v.push_back(mk("s1", "c1", "auth", "/api/v1/users/login", K::kUnspecified, 2, 17));
  v.push_back(mk("q", "s1", "auth", "UserRepository.find", K::kUnspecified, 3, 6));
  v.push_back(mk("q1", "q", "auth", "SELECT User", K::kUnspecified, 3.2, 5.8));
  v.push_back(mk("q2", "q1", "auth", "SELECT ts.auth_user", K::kUnspecified, 3.4, 5.6));
  v.push_back(mk("s2", "c2", "order", "/api/v1/orders", K::kUnspecified, 21, 27));
  SpanGraph r = build_span_graph(v, {});
  ASSERT_EQ(r.reject, SpanReject::kNone) << r.detail;
  EXPECT_EQ(edges_text(r.graph),
            "0 USER>gw http 0-30\n"
            "0.1 gw>auth http 1-18\n"
            "0.1.1 auth>sql db 3-6\n"  // nested SQL span absorbed into one call
            "0.2 gw>order http 20-28\n");
  // The catch-all root names nothing: the entry is the first call's operation.
  EXPECT_EQ(r.graph.service, "auth#|api|v1|users|login");
  EXPECT_EQ(r.collapsed_spans, 5u);  // h, c1, c2 (client spans), q, q2 (inside the SQL call)
}

TEST(SpanGraph, PeerCallsAndTypeTable) {
  using K = SpanKind;
  std::vector<Span> v;
  v.push_back(mk("r", "", "a", "handle", K::kServer, 0, 10));
  v.push_back(mk("c", "r", "a", "GET", K::kClient, 1, 2));
  v.back().set_attribute("db.system", "redis");
  v.push_back(mk("p", "r", "a", "orders publish", K::kProducer, 3, 4));
  v.back().set_attribute("messaging.destination.name", "orders");
  v.push_back(mk("x", "r", "a", "call", K::kClient, 5, 6));  // no peer attribute
  v.push_back(mk("y", "r", "a", "ext", K::kClient, 7, 8));
  v.back().set_attribute("peer.service", "billing");
  SpanGraph r = build_span_graph(v, {});
  ASSERT_EQ(r.reject, SpanReject::kNone) << r.detail;
  EXPECT_EQ(edges_text(r.graph),
            "0 USER>a rpc 0-10\n"
            "0.1 a>redis mc 1-2\n"
            "0.2 a>orders mq 3-4\n"
            "0.3 a>external rpc 5-6\n"
            "0.4 a>billing rpc 7-8\n");
  EXPECT_EQ(r.peer_fallbacks, 1u);
  EXPECT_EQ(r.type_fallbacks, 3u);  // the root, "call", "ext"
}

TEST(SpanGraph, ProducerConsumerIsOneMqCallUntilTheConsumerEnds) {
  using K = SpanKind;
  std::vector<Span> v;
  v.push_back(mk("r", "", "a", "POST /order", K::kServer, 0, 20));
  v.push_back(mk("p", "r", "a", "orders send", K::kProducer, 1, 2));
  v.push_back(mk("c", "p", "b", "orders process", K::kConsumer, 3, 9));
  SpanGraph r = build_span_graph(v, {});
  ASSERT_EQ(r.reject, SpanReject::kNone) << r.detail;
  EXPECT_EQ(edges_text(r.graph), "0 USER>a http 0-20\n0.1 a>b mq 1-9\n");
}

TEST(SpanGraph, RejectsEachBrokenTraceWithItsReason) {
  using K = SpanKind;
  auto reason = [](std::vector<Span> v, SpanGraphOptions o = {}) {
    return build_span_graph(v, o).reject;
  };
  EXPECT_EQ(
      reason({mk("a", "", "s", "x", K::kServer, 0, 5), mk("b", "zz", "s", "y", K::kServer, 1, 2)}),
      SpanReject::kOrphan);
  EXPECT_EQ(
      reason({mk("a", "", "s", "x", K::kServer, 0, 5), mk("b", "", "t", "y", K::kServer, 1, 2)}),
      SpanReject::kSeveralRoots);
  EXPECT_EQ(
      reason({mk("a", "b", "s", "x", K::kServer, 0, 5), mk("b", "a", "t", "y", K::kServer, 1, 2)}),
      SpanReject::kCycle);
  EXPECT_EQ(
      reason({mk("r", "", "s", "x", K::kServer, 0, 5), mk("a", "b", "s", "x", K::kServer, 0, 5),
              mk("b", "a", "t", "y", K::kServer, 1, 2)}),
      SpanReject::kCycle);
  EXPECT_EQ(reason({mk("a", "", "s", "x", K::kServer, 5, 4)}), SpanReject::kEndBeforeStart);
  // Times whose differences overflow int64 (found by fuzz_exports): the
  // root spans the whole range, its child starts at the far end.
  std::vector<Span> huge{mk("a", "", "s", "x", K::kServer, 0, 5),
                         mk("b", "a", "t", "y", K::kServer, 1, 2)};
  huge[0].start_ns = INT64_MIN + 1;
  huge[0].end_ns = INT64_MAX;
  EXPECT_EQ(reason(huge), SpanReject::kTimeOutOfRange);
  huge[0].start_ns = 0;
  huge[1].start_ns = huge[1].end_ns = (int64_t{1} << 62) + 1;
  EXPECT_EQ(reason(huge), SpanReject::kTimeOutOfRange);
  huge[1].start_ns = huge[1].end_ns = huge[0].end_ns = int64_t{1} << 62;
  EXPECT_EQ(reason(huge), SpanReject::kNone);
  // Before the Unix epoch (fuzz_exports: the exporters then could not write it).
  huge[0].start_ns = -1;
  EXPECT_EQ(reason(huge), SpanReject::kTimeOutOfRange);
  std::vector<Span> other{mk("a", "", "s", "x", K::kServer, 0, 5)};
  other[0].parent_trace_id = "t0";
  other[0].parent_id = "q";
  EXPECT_EQ(reason(other), SpanReject::kParentInOtherTrace);
  // A callee starting 3 ms before its caller: skew beyond the 1 ms tolerance.
  EXPECT_EQ(
      reason({mk("a", "", "s", "x", K::kServer, 5, 20), mk("b", "a", "t", "y", K::kServer, 2, 10)}),
      SpanReject::kClockSkew);
  EXPECT_EQ(
      reason({mk("a", "", "s", "x", K::kServer, 0, 10), mk("b", "a", "t", "y", K::kServer, 2, 14)}),
      SpanReject::kOutlivesParent);
  // A chain of 17 services is 17 calls deep.
  std::vector<Span> deep;
  for (int i = 0; i < 17; ++i)
    deep.push_back(mk("s" + std::to_string(i), i ? "s" + std::to_string(i - 1) : "",
                      "svc" + std::to_string(i), "op", K::kServer, i * 0.1, 50 - i * 0.1));
  EXPECT_EQ(reason(deep), SpanReject::kTooDeep);
  SpanGraphOptions o;
  o.max_depth = 20;
  EXPECT_EQ(reason(deep, o), SpanReject::kNone);
  o.max_spans = 10;
  EXPECT_EQ(reason(deep, o), SpanReject::kTooManySpans);
}

TEST(SpanGraph, SkewWithinToleranceIsClampedAndZeroMsCallsCounted) {
  using K = SpanKind;
  std::vector<Span> v{mk("a", "", "s", "x", K::kServer, 1, 10),
                      mk("b", "a", "t", "y", K::kServer, 0.6, 3),     // 0.4 ms early
                      mk("c", "a", "u", "z", K::kServer, 4, 4.2),     // rounds to 0 ms
                      mk("c", "a", "u", "dup", K::kServer, 4, 4.2)};  // duplicate id
  SpanGraph r = build_span_graph(v, {});
  ASSERT_EQ(r.reject, SpanReject::kNone) << r.detail;
  EXPECT_EQ(r.clamped_calls, 1u);
  EXPECT_EQ(r.duplicate_spans, 1u);
  EXPECT_EQ(r.zero_ms_calls, 1u);
  EXPECT_EQ(edges_text(r.graph), "0 USER>s rpc 0-9\n0.1 s>t rpc 0-2\n0.2 s>u rpc 3-3\n");
  EXPECT_TRUE(is_valid(validate(r.graph), true));
}

TEST(SpanGraph, ServiceFromPodDropsTheLastTwoParts) {
  EXPECT_EQ(service_from_pod("ts-order-service-5d6b8f7c9-abcde"), "ts-order-service");
  EXPECT_EQ(service_from_pod("frontend-579b9bff58-t2dbm"), "frontend");
  EXPECT_EQ(service_from_pod("a-b"), "a-b");
  EXPECT_EQ(service_from_pod("plain"), "plain");
}

TEST(SpanGraph, CallTypeFromNamesWhenThereAreNoAttributes) {
  auto t = [](std::string name) {
    Span s;
    s.name = std::move(name);
    return span_call_type(s);
  };
  EXPECT_EQ(t("hipstershop.CartService/AddItem"), CallType::kRpc);
  EXPECT_EQ(t("/geo.Geo/Nearby"), CallType::kRpc);
  EXPECT_EQ(t("hipstershop.Frontend/Recv."), CallType::kRpc);
  EXPECT_EQ(t("HTTP GET"), CallType::kHttp);
  EXPECT_EQ(t("/api/v1/orders"), CallType::kHttp);
  EXPECT_EQ(t("SELECT ts.orders"), CallType::kDb);
  EXPECT_EQ(t("RedisUpdate"), CallType::kMc);
  EXPECT_EQ(t("MmcGetUserId"), CallType::kMc);
  EXPECT_EQ(t("MongoFindUser"), CallType::kDb);
  EXPECT_EQ(t("UploadText"), std::nullopt);
}

TEST(SpanGraph, ResolveCacheGivesWhatResolveGives) {
  SpanResolveCache cache;
  const char* names[] = {"GET /x",     "SELECT * FROM t", "sql.query", "RedisGet",
                         "mongo.find", "pkg.Svc/Method",  "HTTP POST", "/path",
                         "doWork",     "MmcGet",          ""};
  for (int pass = 0; pass < 2; ++pass)
    for (const char* name : names)
      for (SpanKind kind :
           {SpanKind::kUnspecified, SpanKind::kClient, SpanKind::kServer, SpanKind::kProducer}) {
        Span a = mk("a", "", "svc", name, kind, 0, 1), b = a;
        a.resolve();
        EXPECT_EQ(cache.resolve(b), pass == 1) << name;
        EXPECT_TRUE(b.resolved);
        EXPECT_EQ(a.hint, b.hint) << name;
        EXPECT_EQ(a.peer, b.peer) << name;
      }
  // Attributes decide too: such spans are resolved, not cached.
  Span a = mk("a", "", "svc", "GET /x", SpanKind::kClient, 0, 1);
  a.db_system = "redis";
  Span b = a;
  a.resolve();
  EXPECT_FALSE(cache.resolve(b));
  EXPECT_EQ(a.hint, b.hint);
  EXPECT_EQ(a.peer, b.peer);
  EXPECT_EQ(b.peer, "redis");
}

}  // namespace
}  // namespace tracelm
