// co-wechat-api (npm), unmodified, pointed at wxgate's WeChat-compatible API.
//
// Usage: node co_wechat_api.js GATEWAY_URL APPID CLIENT_SECRET OPENID CALLS
//
// The only setting changed is the instance's `prefix` (its API host, which every call
// and the token fetch are built from). The secret is a client secret of
// [[compat.clients]], not the AppSecret. Fetches a token and the jsapi ticket, the
// followers and one user, sends a customer-service message, creates and reads a menu,
// then makes CALLS more follower calls; prints what it saw as JSON.

const API = require('co-wechat-api');

async function main() {
  const [base, appid, secret, openid, calls] = process.argv.slice(2);
  const api = new API(appid, secret);
  api.prefix = base.replace(/\/$/, '') + '/cgi-bin/';

  const token = await api.ensureAccessToken();
  const ticket = await api.getTicket();
  const followers = await api.getFollowers();
  const user = await api.getUser(openid);
  const sent = await api.sendText(openid, 'hello from co-wechat-api through wxgate');
  const menu = {
    button: [{ type: 'click', name: 'Today', key: 'V1001_TODAY' }],
  };
  const created = await api.createMenu(menu);
  const read = await api.getMenu();
  let done = 0;
  for (let i = 0; i < Number(calls); i++) {
    await api.getFollowers();
    done++;
  }
  console.log(JSON.stringify({
    access_token: token.accessToken,
    ticket: ticket.ticket,
    total: followers.total,
    user: user.openid,
    sent: sent.errcode,
    menu_created: created.errcode,
    menu_button: read.menu.button[0].key,
    calls: done,
  }));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
