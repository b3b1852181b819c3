// Anchor for bench/run.sh: the least a Poco HTTP server can do with a JSON POST (read the
// body, parse it, answer 201) with the same thread settings slmhub uses. Prints its port.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <signal.h>

#include <iostream>
#include <nlohmann/json.hpp>

namespace {

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& in,
                     Poco::Net::HTTPServerResponse& out) override {
    std::string body;
    Poco::StreamCopier::copyToString(in.stream(), body);
    auto json = nlohmann::json::parse(body);
    std::string answer = nlohmann::json{{"id", json.value("id", "")}}.dump();
    out.setStatus(Poco::Net::HTTPResponse::HTTP_CREATED);
    out.setContentType("application/json");
    out.setContentLength64(static_cast<Poco::Int64>(answer.size()));
    out.send() << answer;
  }
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::stoi(argv[1]) : 16;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Poco::ThreadPool pool(threads, threads);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(threads);
  params->setMaxQueued(256);
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(10000);
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0), 256);
  Poco::Net::HTTPServer server(new Factory, pool, socket, params);
  server.start();
  std::cout << "listening on http://127.0.0.1:" << socket.address().port() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  server.stopAll(true);
  return 0;
}
