// elecflow dashboard page: connects Perspective viewers to the read-only server.
//
// The viewer bundle comes from the installed perspective-python wheel (served by our
// server at /static/perspective-anywidget.js), so client and server speak exactly the same
// protocol version and nothing is fetched from the network.

import { ready } from "/static/perspective-anywidget.js";

const NY = "America/New_York";

// Perspective 5.6 datagrid "custom" datetime format: Intl.DateTimeFormat options + timeZone.
const NY_TIME = {
  format: "custom",
  timeZone: NY,
  year: "disabled",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  hour12: false,
};
// Chart axis ticks use the same column config, so pin them to New York too.
const NY_CLOCK = {
  format: "custom",
  timeZone: NY,
  year: "disabled",
  month: "disabled",
  day: "disabled",
  hour: "2-digit",
  minute: "2-digit",
  second: "disabled",
  hour12: false,
};
const PRICE = { number_format: { minimumFractionDigits: 2, maximumFractionDigits: 4 } };
const BPS = { number_format: { minimumFractionDigits: 2, maximumFractionDigits: 2 } };
const SIZE = { number_format: { maximumFractionDigits: 0 } };

// The default layout of each viewer (perspective-viewer `restore` configs).
export const LAYOUTS = {
  "viewer-quotes": {
    plugin: "Datagrid",
    columns: ["symbol", "bid", "ask", "mid", "spread_bps", "bid_size", "ask_size", "time"],
    sort: [["symbol", "asc"]],
    title: "Latest quotes · New York time",
    columns_config: {
      time: { date_format: NY_TIME },
      bid: PRICE, ask: PRICE, mid: PRICE, spread_bps: BPS, bid_size: SIZE, ask_size: SIZE,
    },
    settings: false,
  },
  "viewer-trades": {
    plugin: "Datagrid",
    columns: ["time", "symbol", "price", "size", "exchange", "is_iso", "condition_mask", "trade_id"],
    sort: [["time", "desc"]],
    title: "Recent equity trades · newest first",
    columns_config: { time: { date_format: NY_TIME }, price: PRICE, size: SIZE },
    settings: false,
  },
  // Price over time, one line per contract. "X/Y Line" over raw fills (sorted by time)
  // rather than "Y Line" grouped by time: its x axis is the `time` column itself, so the
  // column's date_format (New York) applies to the axis ticks; a "Y Line" axis built from
  // group_by values is labelled in the browser's own time zone.
  "viewer-kalshi-chart": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "price"],
    split_by: ["contract"],
    sort: [["time", "asc"]],
    title: "Kalshi fills · yes price by contract",
    columns_config: { time: { date_format: NY_CLOCK }, price: PRICE },
    settings: false,
  },
  "viewer-kalshi-grid": {
    plugin: "Datagrid",
    columns: ["time", "contract", "price", "count", "taker_side"],
    sort: [["time", "desc"]],
    title: "Kalshi fills · newest first",
    columns_config: { time: { date_format: NY_TIME }, price: PRICE },
    settings: false,
  },
  // Raw fills (read as a Trump-wins probability) against the filtered probability and its
  // +/- 2 sd band: long-form rows split by series, like the Kalshi price chart (so the time
  // axis is in New York time; pivoted, so loaded once the table has rows).
  "viewer-kfilter-chart": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "value"],
    split_by: ["series"],
    sort: [["time", "asc"]],
    title: "Trump-wins probability · raw fills vs state-space filter ± 2 sd",
    columns_config: { time: { date_format: NY_CLOCK }, value: PRICE },
    settings: false,
  },
  // The newest row is the current regime (calm / moving / shock by |z|).
  "viewer-kfilter-grid": {
    plugin: "Datagrid",
    columns: ["time", "regime", "z", "p", "p_lo", "p_hi", "p_obs", "contract", "warm"],
    sort: [["time", "desc"]],
    title: "Filter updates · newest first · regime by |z|",
    columns_config: {
      time: { date_format: NY_TIME }, p: PRICE, p_lo: PRICE, p_hi: PRICE, p_obs: PRICE,
      z: { bg_mode: "gradient", bg_gradient: 4, number_format: { maximumFractionDigits: 2 } },
    },
    settings: false,
  },
  // Option chains: the three curve viewers are filtered to the underlying chosen in the
  // panel's selector (see selectUnderlying).
  "viewer-smile": {
    plugin: "X/Y Scatter",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["k", "iv"],
    split_by: ["series"],
    filter: [["underlying", "==", "SPY"], ["iv", "is not null"]],
    title: "Smile · IV vs log(K/F)",
    columns_config: { k: { number_format: { maximumFractionDigits: 3 } }, iv: PRICE },
    settings: false,
  },
  "viewer-density": {
    plugin: "X/Y Line",
    columns: ["strike", "density"],
    filter: [["underlying", "==", "SPY"]],
    sort: [["strike", "asc"]],
    title: "Risk-neutral density of S_T",
    columns_config: { strike: PRICE },
    settings: false,
  },
  "viewer-cdf": {
    plugin: "X/Y Line",
    columns: ["strike", "cdf"],
    filter: [["underlying", "==", "SPY"]],
    sort: [["strike", "asc"]],
    title: "CDF of S_T",
    columns_config: { strike: PRICE },
    settings: false,
  },
  "viewer-moments": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "atm_iv"],
    split_by: ["underlying"],
    sort: [["time", "asc"]],
    title: "ATM implied vol over time, by underlying",
    columns_config: { time: { date_format: NY_CLOCK }, atm_iv: PRICE },
    settings: false,
  },
  // Election states (docs/states.md): the mode-A fit's Trump and Harris lognormals weighted
  // by their probabilities, and the option-implied (mode B) vs Kalshi probability; both
  // filtered to the panel's underlying.
  "viewer-states-density": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["strike", "density"],
    split_by: ["series"],
    filter: [["underlying", "==", "SPY"]],
    sort: [["strike", "asc"]],
    title: "State densities of S_T · Trump wins x p, Harris wins x (1-p), mixture",
    columns_config: { strike: PRICE },
    settings: false,
  },
  "viewer-states-prob": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "p"],
    split_by: ["series"],
    filter: [["underlying", "==", "SPY"]],
    sort: [["time", "asc"]],
    title: "Trump-wins probability · option-implied (± 2 se) vs Kalshi",
    columns_config: { time: { date_format: NY_CLOCK }, p: PRICE },
    settings: false,
  },
  "viewer-states": {
    plugin: "Datagrid",
    columns: ["underlying", "mode", "time", "identified", "label", "kalshi_probability", "trump_probability",
              "trump_probability_se", "trump_probability_filtered", "probability_gap", "trump_expected_return", "trump_expected_return_se",
              "harris_expected_return", "harris_expected_return_se", "trump_vol", "trump_vol_se", "harris_vol",
              "harris_vol_se", "rmse_vol_points", "fit_ms", "message"],
    sort: [["underlying", "asc"], ["mode", "asc"]],
    title: "Conditional expected return and vol to expiry · Trump vs Harris · A: weight = Kalshi, B: weight free",
    columns_config: {
      time: { date_format: NY_TIME }, kalshi_probability: PRICE, trump_probability: PRICE,
      trump_probability_se: PRICE, trump_probability_filtered: PRICE, probability_gap: PRICE,
      trump_expected_return: { bg_mode: "gradient", bg_gradient: 0.2, number_format: { style: "percent", maximumFractionDigits: 2 } },
      harris_expected_return: { bg_mode: "gradient", bg_gradient: 0.2, number_format: { style: "percent", maximumFractionDigits: 2 } },
      trump_expected_return_se: { number_format: { style: "percent", maximumFractionDigits: 2 } },
      harris_expected_return_se: { number_format: { style: "percent", maximumFractionDigits: 2 } },
      trump_vol: PRICE, harris_vol: PRICE, trump_vol_se: PRICE, harris_vol_se: PRICE,
    },
    settings: false,
  },
  // Empty unless the replay was given --positions FILE.
  "viewer-hedge": {
    plugin: "Datagrid",
    columns: ["underlying", "time", "election_delta", "delta_per_point", "kalshi_contracts", "market_value", "status"],
    sort: [["underlying", "asc"]],
    title: "Book's election delta ($ per unit of Trump probability; per point = /100) · Kalshi Trump-wins contracts that neutralise it",
    columns_config: {
      time: { date_format: NY_TIME },
      election_delta: { bg_mode: "gradient", bg_gradient: 1e5, number_format: { maximumFractionDigits: 0 } },
      delta_per_point: { number_format: { maximumFractionDigits: 0 } },
      kalshi_contracts: { number_format: { maximumFractionDigits: 0 } },
      market_value: { number_format: { maximumFractionDigits: 0 } },
    },
    settings: false,
  },
  "viewer-rnd-summary": {
    plugin: "Datagrid",
    columns: ["underlying", "time", "forward", "forward_method", "atm_iv", "mean", "sd", "skew", "kurtosis",
              "q05", "q50", "q95", "n_quotes_used", "n_excluded", "n_arbitrage_violations", "mass_error",
              "gp_incremental", "gp_full_fits", "density_error"],
    sort: [["underlying", "asc"]],
    title: "Latest density per underlying · moments, quantiles, diagnostics",
    columns_config: { time: { date_format: NY_TIME }, forward: PRICE, mean: PRICE, sd: PRICE, q05: PRICE, q50: PRICE,
                      q95: PRICE, atm_iv: PRICE },
    settings: false,
  },
  // Heatmap-style grid: one row per ticker (its last finished minute), signed columns
  // coloured by sign and size (perspective 5.6 datagrid keys: bg_mode/bg_gradient,
  // fg_mode/fg_gradient).
  "viewer-bars": {
    plugin: "Datagrid",
    columns: ["ticker", "bucket", "p_up", "total_flow", "iso_flow_intensity", "total_flow_iso", "total_flow_non_iso",
              "pct_trades_iso", "pct_volume_iso", "avg_rsprd_bps", "num_trades", "num_trades_iso",
              "total_volume", "quote_updates", "microprice", "log_mid"],
    sort: [["ticker", "asc"]],
    title: "Last finished minute per ticker · p_up: up-move classifier · signed flow (Lee-Ready), sweeps (ISO), spreads",
    columns_config: {
      bucket: { date_format: NY_TIME },
      p_up: { fg_mode: "bar", fg_gradient: 1, number_format: { maximumFractionDigits: 3 } },
      total_flow: { bg_mode: "gradient", bg_gradient: 2e6, number_format: { maximumFractionDigits: 0 } },
      total_flow_iso: { bg_mode: "gradient", bg_gradient: 1e6, number_format: { maximumFractionDigits: 0 } },
      total_flow_non_iso: { bg_mode: "gradient", bg_gradient: 2e6,
                            number_format: { maximumFractionDigits: 0 } },
      iso_flow_intensity: { bg_mode: "gradient", bg_gradient: 0.5,
                            number_format: { maximumFractionDigits: 3 } },
      pct_trades_iso: { fg_mode: "bar", fg_gradient: 1, number_format: { style: "percent" } },
      pct_volume_iso: { fg_mode: "bar", fg_gradient: 1, number_format: { style: "percent" } },
      avg_rsprd_bps: { bg_mode: "gradient", bg_gradient: 20, ...BPS },
      total_volume: SIZE,
      microprice: PRICE,
      log_mid: { number_format: { maximumFractionDigits: 5 } },
    },
    settings: false,
  },
  "viewer-clock": {
    plugin: "Datagrid",
    columns: ["time", "state", "speed", "quotes", "trades", "nbbo_1s", "option_quotes", "option_trades",
              "kalshi_trades"],
    title: "Replay clock · engine time in New York · events per stream",
    columns_config: { time: { date_format: NY_TIME } },
    settings: false,
  },
};

// Price discovery and lead-lag (docs/leadership.md). Every viewer of the panel is filtered to
// the regime chosen in its selector (`view`: "latest" rolling window, or a regime's name).
const SHARE = { number_format: { minimumFractionDigits: 2, maximumFractionDigits: 3 } };
const LAG = { number_format: { minimumFractionDigits: 2, maximumFractionDigits: 2 } };
Object.assign(LAYOUTS, {
  "viewer-lead-lag": {
    plugin: "Datagrid",
    columns: ["y", "leader", "identified", "best_lag", "lag_low", "lag_high", "best_correlation", "null_sd",
              "p_value", "lead_lag_ratio", "n_x", "n_y", "windows", "time"],
    filter: [["pair", "==", "kalshi"], ["view", "==", "latest"]],
    sort: [["y", "asc"]],
    title: "Lead-lag against Kalshi (Hayashi-Yoshida on ticks) · best_lag s > 0 and ratio > 1: Kalshi leads; "
      + "a leader only where the peak stands out of the measured noise (identified), lags lag_low..lag_high fit it",
    columns_config: {
      time: { date_format: NY_TIME }, best_lag: { bg_mode: "gradient", bg_gradient: 10, ...LAG },
      lag_low: LAG, lag_high: LAG, best_correlation: SHARE, null_sd: SHARE,
      p_value: { number_format: { maximumSignificantDigits: 2 } }, lead_lag_ratio: LAG,
    },
    settings: false,
  },
  "viewer-lead-lag-groups": {
    plugin: "Datagrid",
    columns: ["pair", "x", "y", "leader", "identified", "best_lag", "lag_low", "lag_high", "best_correlation",
              "lead_lag_ratio", "n_x", "n_y", "windows", "time"],
    filter: [["pair", "!=", "kalshi"], ["view", "==", "latest"]],
    sort: [["pair", "asc"], ["x", "asc"]],
    title: "Lead-lag within groups · best_lag s > 0 and ratio > 1: x leads y (leader only where identified)",
    columns_config: {
      time: { date_format: NY_TIME }, best_lag: LAG, lag_low: LAG, lag_high: LAG, best_correlation: SHARE,
      lead_lag_ratio: LAG,
    },
    settings: false,
  },
  "viewer-price-discovery": {
    plugin: "Datagrid",
    columns: ["group", "member", "is_mid", "is_lower", "is_upper", "mis", "cs", "ils", "leader_fraction",
              "coint_rank", "coint_fraction", "windows", "regime", "time", "error", "note"],
    filter: [["view", "==", "latest"]],
    sort: [["group", "asc"], ["member", "asc"]],
    title: "Price-discovery shares (rolling VECM, 1 s grid) · leader_fraction: windows with the largest IS midpoint · " +
           "coint: Johansen trace test at rank K-1",
    columns_config: {
      time: { date_format: NY_TIME }, is_mid: { fg_mode: "bar", fg_gradient: 1, ...SHARE }, is_lower: SHARE,
      is_upper: SHARE, mis: SHARE, cs: SHARE, ils: SHARE, leader_fraction: { fg_mode: "bar", fg_gradient: 1, ...SHARE },
      coint_fraction: SHARE,
    },
    settings: false,
  },
  "viewer-sweeps": {
    plugin: "Datagrid",
    columns: ["measure", "slope", "se", "t_stat", "n_obs", "n_groups", "r2", "windows", "independent_windows",
              "regime", "time", "error"],
    filter: [["view", "==", "latest"]],
    sort: [["measure", "asc"]],
    title: "Do sweeps lead? Leadership measure on ISO volume share · window: cluster-robust se · regime: " +
           "Fama-MacBeth, Newey-West se",
    columns_config: {
      time: { date_format: NY_TIME }, slope: SHARE, se: SHARE, t_stat: { bg_mode: "gradient", bg_gradient: 4, ...LAG },
      r2: SHARE, independent_windows: LAG,
    },
    settings: false,
  },
});
const LEADERSHIP_VIEWERS = ["viewer-lead-lag", "viewer-lead-lag-groups", "viewer-price-discovery", "viewer-sweeps"];

// Fama-French factors (docs/factors.md): cumulative factor returns (one point per factor and
// minute), their return and vol per regime, the systematic-vs-idiosyncratic heatmap (one row
// per instrument, a column pair per regime) and the ETF replicas.
const SHARE_HEAT = { bg_mode: "gradient", bg_gradient: 1, number_format: { style: "percent", maximumFractionDigits: 0 } };
const RATIO_HEAT = { bg_mode: "gradient", bg_gradient: 4, number_format: { maximumFractionDigits: 2 } };
const FACTOR_REGIMES = ["pre_open", "regular", "close", "after_hours"];
Object.assign(LAYOUTS, {
  "viewer-factor-chart": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "cumulative_bps"],
    split_by: ["factor"],
    sort: [["time", "asc"]],
    title: "Fama-French factor returns · cumulative since the replay's start, bps",
    columns_config: { time: { date_format: NY_CLOCK }, cumulative_bps: BPS },
    settings: false,
  },
  "viewer-factor-regimes": {
    plugin: "Datagrid",
    columns: ["factor", "regime", "return_bps", "vol_annual", "seconds", "time"],
    sort: [["factor", "asc"], ["time", "asc"]],
    title: "Per regime · factor return (bps) and annualised vol",
    columns_config: {
      time: { date_format: NY_TIME }, return_bps: { bg_mode: "gradient", bg_gradient: 50, ...BPS },
      vol_annual: { number_format: { style: "percent", maximumFractionDigits: 1 } },
    },
    settings: false,
  },
  "viewer-factor-heatmap": {
    plugin: "Datagrid",
    columns: ["symbol", "kind", ...FACTOR_REGIMES.map((r) => `sys_share_${r}`),
              ...FACTOR_REGIMES.map((r) => `idio_ratio_${r}`), "systematic_share", "beta_mkt_rf", "beta_smb",
              "beta_hml", "beta_rmw", "beta_cma", "regime", "time"],
    sort: [["kind", "desc"], ["symbol", "asc"]],
    title: "Systematic vs idiosyncratic · sys_share: factor share of the regime's variance · idio_ratio: " +
           "idiosyncratic variance / baseline days', same regime · betas: Dimson totals, prior updated intraday",
    columns_config: {
      time: { date_format: NY_TIME }, systematic_share: SHARE_HEAT,
      ...Object.fromEntries(FACTOR_REGIMES.map((r) => [`sys_share_${r}`, SHARE_HEAT])),
      ...Object.fromEntries(FACTOR_REGIMES.map((r) => [`idio_ratio_${r}`, RATIO_HEAT])),
      beta_mkt_rf: SHARE, beta_smb: SHARE, beta_hml: SHARE, beta_rmw: SHARE, beta_cma: SHARE,
    },
    settings: false,
  },
  "viewer-etf-replication": {
    plugin: "Datagrid",
    columns: ["etf", "tracking_error_annual", "realized_tracking_error_annual", "tracking_error_bps",
              "realized_tracking_error_bps", "weight_sum", "weight_norm", "gross_exposure", "exposure_error",
              "condition", "method", "n_stocks", "regime", "time"],
    sort: [["etf", "asc"]],
    title: "Minimum-norm ETF replicas from the stocks' factor betas · tracking error per interval (bps) and " +
           "annualised · ex ante: idiosyncratic variances; realised: the decomposition window",
    columns_config: {
      time: { date_format: NY_TIME },
      tracking_error_annual: { bg_mode: "gradient", bg_gradient: 0.5, number_format: { style: "percent", maximumFractionDigits: 1 } },
      realized_tracking_error_annual: { number_format: { style: "percent", maximumFractionDigits: 1 } },
      tracking_error_bps: BPS, realized_tracking_error_bps: BPS, weight_sum: SHARE, weight_norm: SHARE,
      gross_exposure: SHARE, condition: LAG,
    },
    settings: false,
  },
});

// Cross impact of option order flow (docs/theory.md, "Simulator and streaming estimator"): every
// viewer of the panel is filtered to the underlying chosen in its selector.
const IMPACT = { number_format: { minimumFractionDigits: 4, maximumFractionDigits: 4 } };
Object.assign(LAYOUTS, {
  // The Heatmap plugin puts group_by on the x axis and split_by on the y axis: x = the order flow
  // in contract j (columns), y = the price of contract i (rows). Labels "C 046.00" sort calls then
  // puts by strike, so the call-call, call-put and put-put blocks show.
  "viewer-impact-heatmap": {
    plugin: "Heatmap",
    columns: ["impact"],
    group_by: ["label_j"],
    split_by: ["label_i"],
    aggregates: { impact: "avg" },
    filter: [],
    title: "Latest Λ · price of contract i (rows) per contract of signed flow in j (columns), $",
    columns_config: { impact: IMPACT },
    settings: false,
  },
  "viewer-impact-straddle": {
    plugin: "X/Y Line",
    plugin_config: { facet_mode: "overlay", legend_mode: "floating" },
    columns: ["time", "value"],
    split_by: ["series"],
    filter: [],
    sort: [["time", "asc"]],
    title: "Within-straddle cross impact Λ_CP + Λ_PC by strike · $ per contract",
    columns_config: { time: { date_format: NY_CLOCK }, value: IMPACT },
    settings: false,
  },
  "viewer-impact-stats": {
    plugin: "Datagrid",
    columns: ["statistic", "label", "value", "se", "t_stat", "n", "periods", "shrinkage", "dof", "source", "time"],
    filter: [],
    sort: [["statistic", "asc"], ["label", "asc"]],
    title: "Cross-impact statistics · straddle (per strike), CI^(m) of the prescribed portfolios, wings, " +
           "smile curvature κ · n: periods in the window, shrinkage toward the diagonal flow covariance",
    columns_config: {
      time: { date_format: NY_TIME }, value: IMPACT, se: IMPACT, shrinkage: IMPACT,
      t_stat: { bg_mode: "gradient", bg_gradient: 5, number_format: { maximumFractionDigits: 1 } },
      dof: { number_format: { maximumFractionDigits: 0 } },
    },
    settings: false,
  },
});
const IMPACT_VIEWERS = ["viewer-impact-heatmap", "viewer-impact-straddle", "viewer-impact-stats"];

async function selectImpactUnderlying(name) {
  for (const id of IMPACT_VIEWERS) {
    const viewer = $(id);
    const filter = [["underlying", "==", name], ...(LAYOUTS[id].filter ?? []).filter((f) => f[0] !== "underlying")];
    LAYOUTS[id].filter = filter;  // also for viewers loaded later (the pivoted ones wait for rows)
    if (viewer?.dataset.loaded) await viewer.restore({ filter });
  }
}

// The impact panel's selector: filled from the statistics table (one row per underlying and
// statistic), the first underlying chosen until the user picks one.
async function watchImpactUnderlyings(table) {
  const select = $("impact-underlying-select");
  if (!select) return;
  select.addEventListener("change",
    () => selectImpactUnderlying(select.value).catch((e) => recordError(e?.message || e)));
  const view = await table.view({ columns: ["underlying"] });
  const refresh = async () => {
    const names = [...new Set((await view.to_columns()).underlying ?? [])].sort();
    const have = [...select.options].map((o) => o.value);
    if (names.join() === have.join()) return;
    const current = select.value;
    select.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: n })));
    if (names.includes(current)) select.value = current;
    else if (names.length) { select.value = names[0]; await selectImpactUnderlying(select.value); }
  };
  await view.on_update(refresh);
  await refresh();
}

// State the page exposes for tests and for a human poking at the console.
const status = {
  ready: false,
  connected: false,
  errors: [],
  rows: {},           // table name -> row count the page last saw
  updates: {},        // table name -> number of update notifications received
  replay: null,       // last /api/replay answer
  clock: null,        // last replay_clock row
  engineTimeText: "",
};
window.elecflowDashboard = status;

function recordError(message) {
  status.errors.push(String(message).slice(0, 500));
  console.error("elecflow dashboard:", message);
}
window.addEventListener("error", (e) => {
  // Browsers report a resize observer whose callbacks resize again within one frame as an
  // error; layouts of nested flex charts do that while settling. It is not a failure.
  if (String(e.message || "").startsWith("ResizeObserver loop")) return;
  recordError(e.message || e);
});
window.addEventListener("unhandledrejection", (e) => recordError(e.reason?.message || e.reason));
document.addEventListener("securitypolicyviolation", (e) =>
  recordError(`CSP blocked ${e.blockedURI} (${e.violatedDirective})`));

const $ = (id) => document.getElementById(id);

const engineTimeFormat = new Intl.DateTimeFormat("en-US", {
  timeZone: NY, year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short",
});
const countFormat = new Intl.NumberFormat("en-US");

function setConnection(state) {
  status.connected = state === "connected";
  $("connection").dataset.state = state;
  $("connection").textContent = state;
}

function openSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", () => resolve(ws), { once: true });
    ws.addEventListener("error", () => reject(new Error(`websocket ${url} failed`)), { once: true });
  });
}

async function connectClient() {
  await ready;
  const { Client } = customElements.get("perspective-viewer").__wasm_module__;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = await openSocket(`${scheme}//${location.host}/websocket`);
  const client = new Client(
    async (bytes) => ws.send(bytes.slice()),   // copy: `bytes` views WebAssembly memory
    async () => ws.close(),
  );
  ws.addEventListener("message", (e) => client.handle_response(e.data));
  ws.addEventListener("close", () => {
    setConnection("disconnected");
    waitForServerThenReload();
  });
  setConnection("connected");
  return client;
}

// After the server goes away (replay finished, restarted), reload once it answers again.
let reloading = false;
async function waitForServerThenReload() {
  if (reloading) return;
  reloading = true;
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const r = await fetch("/api/replay", { cache: "no-store" });
      if (r.ok) { location.reload(); return; }
    } catch (_) { /* still down */ }
  }
}

async function watchTable(table, name) {
  // A view of our own per table: row counts for the page status, no data copied.
  const view = await table.view({ columns: [] });
  status.updates[name] = 0;
  const refresh = async () => {
    status.rows[name] = await view.num_rows();
  };
  // Subscribe first, then read: requests on one connection are handled in order, so no
  // update can fall between the read and the subscription.
  await view.on_update(async () => {
    status.updates[name] += 1;
    await refresh();
  });
  await refresh();
}

function renderClock(row) {
  status.clock = row;
  if (!row) return;
  if (row.time != null) {
    status.engineTimeText = engineTimeFormat.format(new Date(row.time));
    $("engine-time").textContent = status.engineTimeText;
  }
  if (row.speed != null) {
    $("speed").textContent = row.speed > 0 ? `${row.speed}×` : "max (simulation)";
  }
  const parts = [
    ["quotes", row.quotes], ["trades", row.trades], ["1 s NBBO", row.nbbo_1s],
    ["option quotes", row.option_quotes], ["option trades", row.option_trades], ["Kalshi", row.kalshi_trades],
  ].filter(([, n]) => n != null).map(([k, n]) => `${k} ${countFormat.format(n)}`);
  $("counts").textContent = parts.join(" · ");
}

async function watchClock(table) {
  const view = await table.view();
  const refresh = async () => renderClock((await view.to_json())[0]);
  await view.on_update(refresh);
  await refresh();
}

// "X/Y Line" draws no legend for split_by series in 5.6, so the page draws one: series
// follow the view's split order and take the theme's --psp-charts--series-N--color.
const legendKeys = new WeakMap();  // legend box -> series names it shows
async function renderLegend(viewer, box) {
  let view;
  try {
    view = await viewer.getView();
  } catch (_) {
    // A chart scrolled out of sight may have no view yet ("No View for panel"): the next
    // table update redraws the legend.
    return;
  }
  const paths = await view.column_paths();
  // 5.6 returns [[split values...], [column names...]]; older releases "split|column".
  const splits = Array.isArray(paths[0]) ? paths[0] : paths.map((p) => p.split("|")[0]);
  const names = [...new Set(splits)];
  const key = names.join("\n");
  if (key === legendKeys.get(box)) return;
  legendKeys.set(box, key);
  const style = getComputedStyle(viewer);
  const palette = [];
  for (let i = 1; i <= 64; i++) {
    const color = style.getPropertyValue(`--psp-charts--series-${i}--color`).trim();
    if (!color) break;
    palette.push(color);
  }
  box.replaceChildren(...names.map((name, i) => {
    const item = document.createElement("div");
    const swatch = document.createElement("i");
    swatch.style.background = palette.length ? palette[i % palette.length] : "currentColor";
    item.append(swatch, name);
    return item;
  }));
}

// perspective-python 5.6.1 hangs in `table.update` (and with it the engine thread and every
// websocket request) when two or more pivoted views (group_by / split_by) exist on a table
// that is still empty; pivoted views made after the first rows arrive are fine. So the page
// makes its pivoted views only once their table has rows. See docs/dashboard.md.
const isPivoted = (layout) => !!(layout?.group_by?.length || layout?.split_by?.length);

async function waitForRows(table) {
  while ((await table.size()) === 0) await new Promise((r) => setTimeout(r, 500));
}

// The legend of a chart split by `splitColumn`: redrawn when the set of series changes.
async function watchLegend(table, viewerId, boxId, splitColumn) {
  const viewer = $(viewerId);
  const box = $(boxId);
  if (!viewer || !box) return;
  await waitForRows(table);
  const refresh = () => renderLegend(viewer, box).catch((e) => recordError(e?.message || e));
  const view = await table.view({ group_by: [splitColumn], columns: [] });
  await view.on_update(refresh);
  await refresh();
  viewer.addEventListener("perspective-config-update", () => { legendKeys.delete(box); refresh(); });
}

// The option panel's underlying selector: filled from the summary table, applied as a
// filter to the smile, density and CDF viewers.
const CURVE_VIEWERS = ["viewer-smile", "viewer-density", "viewer-cdf", "viewer-states-density", "viewer-states-prob"];

async function selectUnderlying(name) {
  for (const id of CURVE_VIEWERS) {
    const viewer = $(id);
    const filter = [["underlying", "==", name], ...(LAYOUTS[id].filter ?? []).filter((f) => f[0] !== "underlying")];
    LAYOUTS[id].filter = filter;  // also for viewers loaded later
    if (viewer?.dataset.loaded) await viewer.restore({ filter });
  }
}

async function watchUnderlyings(table) {
  const select = $("underlying-select");
  if (!select) return;
  select.addEventListener("change", () => selectUnderlying(select.value).catch((e) => recordError(e?.message || e)));
  const view = await table.view({ columns: ["underlying"] });
  const refresh = async () => {
    const names = [...new Set((await view.to_columns()).underlying ?? [])].sort();
    const have = [...select.options].map((o) => o.value);
    if (names.join() === have.join()) return;
    const current = select.value;
    select.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: n })));
    if (names.includes(current)) select.value = current;
    else if (names.length) { select.value = names.includes("SPY") ? "SPY" : names[0]; await selectUnderlying(select.value); }
  };
  await view.on_update(refresh);
  await refresh();
}

// The leadership panel: the regime selector filters the panel's viewers and the shares chart.
let leadershipRegime = "latest";
let redrawShares = null;

async function selectRegime(value) {
  leadershipRegime = value;
  for (const id of LEADERSHIP_VIEWERS) {
    const viewer = $(id);
    const filter = [...(LAYOUTS[id].filter ?? []).filter((f) => f[0] !== "view"), ["view", "==", value]];
    LAYOUTS[id].filter = filter;  // also for viewers loaded later
    if (viewer?.dataset.loaded) await viewer.restore({ filter });
  }
  if (redrawShares) await redrawShares();
}

// The SVG namespace, read off a parsed element: the page carries no URL literals at all.
const SVG_NS = (() => { const d = document.createElement("div"); d.innerHTML = "<svg></svg>"; return d.firstChild.namespaceURI; })();
function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}
const pct = (x) => (x == null ? "–" : `${Math.round(100 * x)}%`);

// Bars with bounds, one small chart per group: bar = Hasbrouck IS midpoint, whisker = the
// bounds over Cholesky orderings, green = the member with the largest midpoint. Perspective's
// bar charts cannot draw a range per bar, so the page draws these few SVG bars itself.
function renderShares(box, rows) {
  const groups = new Map();
  for (const r of rows) {
    if (!groups.has(r.group)) groups.set(r.group, []);
    groups.get(r.group).push(r);
  }
  status.sharesGroups = groups.size;
  if (!groups.size) {
    box.replaceChildren(Object.assign(document.createElement("p"), {
      className: "empty", textContent: leadershipRegime === "latest" ? "no window estimated yet"
        : "no window lies entirely in this regime yet",
    }));
    return;
  }
  const H = 150, top = 30, bottom = 34, barW = 26, gap = 24, left = 28;  // gap: room for "led 100%"
  const y = (v) => top + (1 - Math.max(0, Math.min(1, v))) * (H - top - bottom);
  const charts = [];
  for (const [name, members] of [...groups.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    members.sort((a, b) => a.member.localeCompare(b.member));
    const W = Math.max(190, left + members.length * (barW + gap) + 8);  // room for the subtitle
    const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}` });
    s.append(svg("text", { x: 2, y: 11, class: "group-title" }, name));
    const first = members[0];
    const sub = leadershipRegime === "latest"
      ? (first.error ? first.error.slice(0, 40) : `trace-test rank ${first.coint_rank ?? "–"} of ${members.length - 1}`)
      : `${first.windows ?? 0} windows · cointegrated ${pct(first.coint_fraction)}`;
    s.append(svg("text", { x: 2, y: 23, class: "muted" }, sub));
    for (const v of [0, 0.5, 1]) {
      s.append(svg("line", { x1: left - 4, x2: W, y1: y(v), y2: y(v), class: "axis" }));
      s.append(svg("text", { x: 0, y: y(v) + 3, class: "muted" }, v.toFixed(1)));
    }
    const best = Math.max(...members.map((m) => m.is_mid ?? -1));
    members.forEach((m, i) => {
      const x = left + i * (barW + gap);
      if (m.is_mid != null) {
        const leader = m.is_mid === best;
        s.append(svg("rect", { x, y: y(m.is_mid), width: barW, height: Math.max(0, y(0) - y(m.is_mid)),
                               class: leader ? "bar leader" : "bar" },));
        s.lastChild.append(svg("title", {}, `${m.member}: IS ${m.is_lower?.toFixed(3)}–${m.is_upper?.toFixed(3)}, ` +
                                            `MIS ${m.mis?.toFixed(3)}, CS ${m.cs?.toFixed(3)}`));
      }
      if (m.is_lower != null && m.is_upper != null) {
        const cx = x + barW / 2;
        s.append(svg("line", { x1: cx, x2: cx, y1: y(m.is_lower), y2: y(m.is_upper), class: "whisker" }));
        for (const v of [m.is_lower, m.is_upper]) {
          s.append(svg("line", { x1: cx - 5, x2: cx + 5, y1: y(v), y2: y(v), class: "whisker" }));
        }
      }
      s.append(svg("text", { x: x + barW / 2, y: H - bottom + 12, "text-anchor": "middle" },
                   m.member.replace("NAV:", "NAV ")));
      const foot = leadershipRegime === "latest" ? (m.is_mid == null ? "" : m.is_mid.toFixed(2))
        : `led ${pct(m.leader_fraction)}`;
      s.append(svg("text", { x: x + barW / 2, y: H - bottom + 24, "text-anchor": "middle", class: "muted" }, foot));
    });
    charts.push(s);
  }
  box.replaceChildren(...charts);
  box.style.display = "flex";
  box.style.flexWrap = "wrap";
  box.style.alignContent = "flex-start";
  box.style.gap = "4px 18px";
}

async function watchShares(table) {
  const box = $("shares-chart");
  if (!box) return;
  const columns = ["view", "group", "member", "is_lower", "is_upper", "is_mid", "mis", "cs", "leader_fraction",
                   "windows", "coint_rank", "coint_fraction", "error"];
  const view = await table.view({ columns });
  let pending = false;
  redrawShares = async () => {
    const rows = (await view.to_json()).filter((r) => r.view === leadershipRegime);
    renderShares(box, rows);
  };
  // at most one redraw per half second: publications come in bursts
  await view.on_update(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; redrawShares().catch((e) => recordError(e?.message || e)); }, 500);
  });
  await redrawShares();
}

function watchRegimeSelect() {
  const select = $("regime-select");
  if (!select) return;
  select.addEventListener("change", () => selectRegime(select.value).catch((e) => recordError(e?.message || e)));
}

// Replay state banner and Pause/Resume.
function renderReplay(state) {
  status.replay = state;
  const s = state?.state ?? "unknown";
  $("replay-state").textContent = s === "unavailable" ? "no replay control" : s;
  $("replay-state").dataset.state = s;
  $("banner").dataset.state = s;
  const controllable = !!state?.controllable;
  $("pause").disabled = !controllable || s !== "running";
  $("resume").disabled = !controllable || s !== "paused";
}

async function pollReplay() {
  try {
    const r = await fetch("/api/replay", { cache: "no-store" });
    if (r.ok) renderReplay(await r.json());
  } catch (_) { /* the websocket close handler reports a lost server */ }
}

async function postAction(action) {
  try {
    const r = await fetch("/api/replay", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action }),
    });
    if (!r.ok) throw new Error(`${action}: HTTP ${r.status}`);
    renderReplay(await r.json());
  } catch (e) {
    recordError(e.message || e);
  }
}

async function main() {
  $("pause").addEventListener("click", () => postAction("pause"));
  $("resume").addEventListener("click", () => postAction("resume"));
  pollReplay();
  setInterval(pollReplay, 1000);

  const client = await connectClient();
  const hosted = new Set(await client.get_hosted_table_names());
  const tables = {};
  const open = async (name) => {
    if (!hosted.has(name)) return null;
    tables[name] ??= client.open_table(name);
    return tables[name];
  };

  const viewers = [...document.querySelectorAll("perspective-viewer[data-table]")];
  const deferred = [];  // pivoted viewers, loaded once their table has rows
  const loaded = {};    // viewer id -> promise of it being loaded
  await Promise.all(viewers.map(async (viewer) => {
    const table = await open(viewer.dataset.table);
    if (!table) {
      viewer.replaceWith(Object.assign(document.createElement("p"), {
        className: "missing", textContent: `table "${viewer.dataset.table}" is not published`,
      }));
      return;
    }
    // perspective 5.6: load the client, then name the table in the layout (the older
    // `viewer.load(table)` still works but logs a deprecation warning).
    const show = async () => {
      await viewer.load(client);
      await viewer.restore({ table: viewer.dataset.table, ...LAYOUTS[viewer.id] });
      viewer.dataset.loaded = "1";
    };
    if (isPivoted(LAYOUTS[viewer.id])) {
      loaded[viewer.id] = waitForRows(await table).then(show);
      deferred.push(loaded[viewer.id]);
    } else {
      await show();
    }
  }));
  for (const name of Object.keys(tables)) await watchTable(await tables[name], name);
  if (tables.replay_clock) await watchClock(await tables.replay_clock);
  // a legend reads its chart's view, so it starts once the chart is loaded
  const legends = [["kalshi", "viewer-kalshi-chart", "kalshi-legend", "contract"],
                   ["kalshi_filter_series", "viewer-kfilter-chart", "kfilter-legend", "series"],
                   ["smile_chart", "viewer-smile", "smile-legend", "series"],
                   ["rnd_history", "viewer-moments", "moments-legend", "underlying"],
                   ["state_density_chart", "viewer-states-density", "states-density-legend", "series"],
                   ["election_probability", "viewer-states-prob", "states-prob-legend", "series"]];
  for (const [name, viewerId, boxId, column] of legends) {
    if (!tables[name]) continue;
    const table = await tables[name];
    deferred.push((loaded[viewerId] ?? Promise.resolve()).then(() => watchLegend(table, viewerId, boxId, column)));
  }
  if (tables.rnd_summary) deferred.push(watchUnderlyings(await tables.rnd_summary));
  if (tables.factor_returns_chart) {  // the factor chart's legend (docs/factors.md)
    const table = await tables.factor_returns_chart;
    deferred.push((loaded["viewer-factor-chart"] ?? Promise.resolve())
      .then(() => watchLegend(table, "viewer-factor-chart", "factor-legend", "factor")));
  }
  if (tables.impact_stats) deferred.push(watchImpactUnderlyings(await tables.impact_stats));
  if (tables.impact_straddle) {  // the straddle chart's legend: one series per strike
    const table = await tables.impact_straddle;
    deferred.push((loaded["viewer-impact-straddle"] ?? Promise.resolve())
      .then(() => watchLegend(table, "viewer-impact-straddle", "impact-straddle-legend", "series")));
  }
  watchRegimeSelect();
  if (tables.price_discovery) deferred.push(watchShares(await tables.price_discovery));
  status.ready = true;
  await Promise.all(deferred);
}

main().catch((e) => {
  recordError(e?.stack || e);
  setConnection("disconnected");
});
