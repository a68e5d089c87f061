# Sends N requests of one scenario over one keep-alive connection (bench/profile.sh).
import http.client, sys
scen, port, pushes, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
skip = int(sys.argv[5]) if len(sys.argv) > 5 else 0
c = http.client.HTTPConnection("127.0.0.1", port)
lines = open(pushes).read().splitlines()[skip:skip+n]
for i in range(n):
    if scen in ("push", "floor"):
        path, body = lines[i].split("\t", 1)
        c.request("POST", path, body=body, headers={"Content-Type": "text/xml"})
    elif scen == "config":
        c.request("GET", f"/wx/config?url=http%3A%2F%2F127.0.0.1%3A{port}%2Fbench.html")
    else:
        c.request("GET", "/healthz" if scen == "healthz" else "/")
    r = c.getresponse(); b = r.read()
    if r.status != 200: print(r.status, b[:200], file=sys.stderr); sys.exit(1)
