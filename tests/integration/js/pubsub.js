// MQTT.js over WebSocket: subscribe, publish to itself through the broker, print what came
// back. Usage: node pubsub.js URL TOPIC [CAFILE]. Exit status 0 when the message returned.
const fs = require("fs");
const mqtt = require("mqtt");

const [url, topic, cafile] = process.argv.slice(2);
const opts = { clientId: "mqttjs-" + process.pid, reconnectPeriod: 0, connectTimeout: 5000 };
if (cafile) opts.ca = fs.readFileSync(cafile);
const client = mqtt.connect(url, opts);
const timer = setTimeout(() => {
  console.error("timeout");
  process.exit(2);
}, 10000);
client.on("error", (e) => {
  console.error("error: " + e.message);
  process.exit(1);
});
client.on("connect", () => {
  client.subscribe(topic, { qos: 1 }, (err) => {
    if (err) {
      console.error("subscribe: " + err.message);
      process.exit(1);
    }
    client.publish(topic, "hello from mqtt.js", { qos: 1 });
  });
});
client.on("message", (t, payload) => {
  console.log(t + " " + payload.toString());
  clearTimeout(timer);
  client.end(false, () => process.exit(0));
});
