// Run by the chart's MongoDB init Job: `mongosh --nodb init-replica-set.js`. Idempotent.
//   1. wait until every member answers ping (the quorum check of replSetInitiate needs them all);
//   2. initiate the replica set if it is not yet (member 0 preferred as primary);
//   3. wait for a primary, then create the services' user, or reset its password to the Secret's
//      (how a rotated mongodb-password reaches the server).
// Settings come from the environment: RS_NAME, RS_MEMBERS (host:port,...), ROOT_USERNAME, ROOT_PASSWORD,
// APP_USERNAME, APP_PASSWORD, APP_DATABASE.
const env = process.env;
const members = env.RS_MEMBERS.split(",");

function connect(host, authenticate) {
  for (;;) {
    try {
      const admin = new Mongo(`mongodb://${host}/?directConnection=true`).getDB("admin");
      if (authenticate) {
        admin.auth(env.ROOT_USERNAME, env.ROOT_PASSWORD);
      }
      if (admin.runCommand({ ping: 1 }).ok === 1) {
        return admin;
      }
    } catch (error) {
      print(`waiting for ${host}: ${error.message}`);
    }
    sleep(2000);
  }
}

members.forEach((host) => connect(host, false));
let admin = connect(members[0], true);

const status = admin.runCommand({ replSetGetStatus: 1 });
if (status.ok !== 1) {
  if (status.codeName !== "NotYetInitialized") {
    throw new Error(`replSetGetStatus failed: ${tojson(status)}`);
  }
  const config = {
    _id: env.RS_NAME,
    members: members.map((host, i) => ({ _id: i, host, priority: i === 0 ? 2 : 1 })),
  };
  const result = admin.runCommand({ replSetInitiate: config });
  if (result.ok !== 1) {
    throw new Error(`replSetInitiate failed: ${tojson(result)}`);
  }
  print(`replica set ${env.RS_NAME} initiated with ${members.length} member(s)`);
}

for (;;) {
  const hello = admin.runCommand({ hello: 1 });
  if (hello.isWritablePrimary) {
    break;
  }
  if (hello.primary) {
    admin = connect(hello.primary, true);
    continue;
  }
  sleep(1000);
}

const roles = [{ role: "readWrite", db: env.APP_DATABASE }];
if (admin.getUser(env.APP_USERNAME)) {
  admin.updateUser(env.APP_USERNAME, { pwd: env.APP_PASSWORD, roles });
  print(`user ${env.APP_USERNAME} updated`);
} else {
  admin.createUser({ user: env.APP_USERNAME, pwd: env.APP_PASSWORD, roles });
  print(`user ${env.APP_USERNAME} created`);
}
