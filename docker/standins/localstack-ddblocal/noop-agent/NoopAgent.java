// Stand-in for LocalStack's ddb-local-loader agent jar (a patch that lifts DynamoDB Local's
// limit of 20 GSIs), which LocalStack fetches from its own artifact repository: not reachable
// here. LocalStack always starts DynamoDB Local with -javaagent:<that jar>, so the JVM needs an
// agent jar at that path; this one does nothing.
public final class NoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
