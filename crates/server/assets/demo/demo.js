// Shared by the demo pages: where the sandbox is (from /demo/env.json).
window.wxgateDemo = {
  env: function () {
    if (!this._env) {
      this._env = fetch('env.json').then(function (r) { return r.json(); });
    }
    return this._env;
  }
};
