import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * The Kafka steps of deploy/local/cluster/up.sh in one JVM. Each Kafka command-line tool is
 * a JVM start of several seconds on a busy two-core machine; creating seven topics and the
 * two internal ones with them took over 30 s. Compiled once by up.sh (javac) into
 * .cache/kafka/cluster-admin/.
 *
 * <pre>
 *   ClusterAdmin BOOTSTRAP BROKER_IDS TIMEOUT_S [--serving=HOST:PORT,...] [RF PARTITIONS TOPIC...]
 * </pre>
 *
 * <ol>
 *   <li>Waits until the brokers registered and unfenced in the cluster metadata are exactly
 *       BROKER_IDS (comma-separated), printing each change.</li>
 *   <li>With --serving: waits until each of these (just restarted) brokers answers a metadata
 *       request itself. Right after a kill -9 the dead broker's registration lingers until its
 *       session times out, so step 1 alone could pass before the new process serves.</li>
 *   <li>With topics: creates the missing ones with PARTITIONS and RF, warns about existing
 *       ones of another shape, makes the group and transaction coordinators create
 *       __consumer_offsets and __transaction_state (their RF is the brokers' setting), and
 *       waits until all these topics exist with every replica in sync.</li>
 * </ol>
 *
 * Prints progress on stdout; exits 1 with a message on stderr on a timeout or an error.
 */
public final class ClusterAdmin {
    private static final List<String> INTERNAL = List.of("__consumer_offsets", "__transaction_state");

    private ClusterAdmin() {}

    public static void main(String[] args) throws Exception {
        List<String> serving = List.of();
        if (args.length > 3 && args[3].startsWith("--serving=")) {
            serving = List.of(args[3].substring("--serving=".length()).split(","));
            List<String> rest = new ArrayList<>(List.of(args));
            rest.remove(3);
            args = rest.toArray(new String[0]);
        }
        if (args.length < 3 || args.length == 4) {
            fail("usage: ClusterAdmin BOOTSTRAP BROKER_IDS TIMEOUT_S [--serving=HOST:PORT,...] [RF PARTITIONS TOPIC...]");
        }
        String bootstrap = args[0];
        String wantBrokers = String.join(" ", new TreeSet<>(List.of(args[1].split(","))));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[2]));

        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            waitForBrokers(admin, wantBrokers, deadline);
            for (String address : serving) {
                waitUntilServing(address, deadline);
            }
            if (args.length > 4) {
                short rf = Short.parseShort(args[3]);
                int partitions = Integer.parseInt(args[4]);
                List<String> topics = List.of(args).subList(5, args.length);
                ensureTopics(admin, topics, partitions, rf, deadline);
            }
        }
    }

    private static Properties adminProps(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 5000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 10000);
        return props;
    }

    /** Bootstrapped from ADDRESS alone, the first answer can only come from that broker. */
    private static void waitUntilServing(String address, long deadline) throws InterruptedException {
        int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
        try (Admin single = Admin.create(adminProps(address))) {
            while (true) {
                try {
                    Collection<Node> nodes = single.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                    if (nodes.stream().anyMatch(n -> n.port() == port)) {
                        say("broker on " + address + " serves requests");
                        return;
                    }
                } catch (Exception e) {
                    // not serving yet
                }
                checkDeadline(deadline, "the broker on " + address + " does not serve requests");
                Thread.sleep(500);
            }
        }
    }

    private static void waitForBrokers(Admin admin, String want, long deadline) throws InterruptedException {
        String last = null;
        while (true) {
            String live;
            try {
                Collection<Node> nodes = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                live = nodes.stream().map(n -> String.valueOf(n.id())).sorted().collect(Collectors.joining(" "));
            } catch (Exception e) {
                live = "";
            }
            if (live.equals(want)) {
                say("registered brokers: " + live);
                return;
            }
            if (!live.equals(last)) {
                say("registered brokers: " + (live.isEmpty() ? "none yet" : live));
                last = live;
            }
            checkDeadline(deadline, "registered brokers: '" + live + "', want '" + want + "'");
            Thread.sleep(500);
        }
    }

    private static void ensureTopics(Admin admin, List<String> topics, int partitions, short rf, long deadline)
            throws Exception {
        Set<String> existing = admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
        List<NewTopic> missing = new ArrayList<>();
        for (String topic : topics) {
            if (!existing.contains(topic)) {
                missing.add(new NewTopic(topic, partitions, rf));
            }
        }
        List<String> present = topics.stream().filter(existing::contains).collect(Collectors.toList());
        if (!present.isEmpty()) {
            for (TopicDescription d : admin.describeTopics(present).allTopicNames().get().values()) {
                int parts = d.partitions().size();
                int replicas = d.partitions().get(0).replicas().size();
                if (parts != partitions || replicas != rf) {
                    sayf("warning: topic %s has %d partitions, replication factor %d (expected %d, %d); left as is",
                            d.name(), parts, replicas, partitions, rf);
                }
            }
        }
        if (!missing.isEmpty()) {
            try {
                admin.createTopics(missing).all().get();
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
            sayf("created %d topics (%d partitions, replication factor %d)", missing.size(), partitions, rf);
        }

        if (!existing.containsAll(INTERNAL)) {
            // Asking a coordinator about an unknown id makes the broker create its topic.
            try {
                admin.describeConsumerGroups(List.of("pingan-cluster-up")).all().get();
            } catch (ExecutionException expected) {
                // GroupIdNotFoundException (or similar): the coordinator lookup already happened
            }
            try {
                admin.describeTransactions(List.of("pingan-cluster-up")).all().get();
            } catch (ExecutionException expected) {
                // TransactionalIdNotFoundException: likewise
            }
        }

        List<String> all = new ArrayList<>(topics);
        all.addAll(INTERNAL);
        String last = null;
        while (true) {
            String problem = notInSync(admin, all);
            if (problem == null) {
                sayf("%d topics, every replica in sync (incl. %s)", all.size(), String.join(", ", INTERNAL));
                return;
            }
            if (!problem.equals(last)) {
                say("waiting: " + problem);
                last = problem;
            }
            checkDeadline(deadline, problem);
            Thread.sleep(500);
        }
    }

    /** The first reason why not every topic exists with all its replicas in sync, or null. */
    private static String notInSync(Admin admin, List<String> topics) {
        Map<String, TopicDescription> descriptions;
        try {
            Set<String> names = admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get();
            for (String t : topics) {
                if (!names.contains(t)) {
                    return "topic " + t + " does not exist yet";
                }
            }
            descriptions = admin.describeTopics(topics).allTopicNames().get();
        } catch (Exception e) {
            return "cannot describe topics: " + e.getMessage();
        }
        for (TopicDescription d : descriptions.values()) {
            for (TopicPartitionInfo p : d.partitions()) {
                if (p.isr().size() < p.replicas().size()) {
                    return d.name() + "-" + p.partition() + " has " + p.isr().size() + " in-sync replicas";
                }
            }
        }
        return null;
    }

    /** Progress, indented like the messages of the deploy/local scripts. */
    private static void say(String line) {
        System.out.println("    " + line);
    }

    private static void sayf(String format, Object... args) {
        say(String.format(format, args).stripTrailing());
    }

    private static void checkDeadline(long deadline, String what) {
        if (System.nanoTime() > deadline) {
            fail("timed out: " + what);
        }
    }

    private static void fail(String message) {
        System.err.println("error: " + message);
        System.exit(1);
    }
}
